/**
 * The standby process (standbyProcess.ts) for replicas that run as containers: one container of the
 * image a container replica last ran, created and started in advance with that plan's limits, running
 * the gateway's standby launcher (replicaLauncher.ts, bind-mounted read-only) with the image's own
 * node. The launcher has loaded the image's server in advance (its imports, onnxruntime) and waits for
 * its command on a Unix socket in the container's socket folder; a cold start sends the command and
 * the container becomes the replica, so it pays for neither the runtime's create and start nor node's
 * boot nor the server's imports — only for loading the model and listening.
 *
 * A standby serves plans of the same image with the same limits (`replicaPlanKey`): a container's
 * cgroup and mounts are fixed when it is created. Another plan gets a container of its own, and the
 * standby is then replaced by one for it. It is refilled a little after it is used, when it no longer
 * competes for the CPU with the replica that is starting.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerHostEnv } from '../config';
import type { ContainerLimits } from '../container/bundleSpec';
import { type Container, runContainer } from '../container/container';
import type { ContainerRuntime } from '../container/containerRuntime';
import { containerPaths, SOCKET_DIR_IN_CONTAINER, SOCKET_FILE } from './containerReplica';
import { type LaunchPlan, replicaPlanKey } from './launchPlan';
import type { LaunchCommand } from './replicaLauncher';
import { bundleLauncher } from './standbyProcess';

const LAUNCHER_DIR_IN_CONTAINER = '/run/ferry-launcher';
const COMMAND_SOCKET_FILE = 'standby.sock';
const REFILL_DELAY_MS = 1500;
/** How long a cold start waits for a standby that is still loading the server before starting afresh. */
const TAKE_WAIT_MS = 3000;
const NODE_NAMES = new Set(['node', 'nodejs']);

/** What spawning a replica needs of a standby container that has been given its command. */
export interface TakenStandbyContainer {
  container: Container;
  runtime: ContainerRuntime;
  /** The replica's socket, host side. */
  socketPath: string;
  logFile: string;
  rootfs: string;
}

interface Waiting {
  key: string;
  container: Container;
  runtime: ContainerRuntime;
  socketDir: string;
  logFile: string;
  rootfs: string;
  /** The script the launcher loaded in advance and runs on the command (a path in the image). */
  script: string;
  args: string[];
  cwd: string;
}

/** The image's argv when it is `node <script>.js ...` and its server supports the standby entry. */
function standbyArgv(plan: LaunchPlan): { node: string; script: string; args: string[] } | undefined {
  const cfg = plan.container?.config;
  if (!cfg || !plan.standbyEntry) return undefined;
  const [node, script, ...args] = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  if (!node || !script || !NODE_NAMES.has(path.posix.basename(node))) return undefined;
  if (!script.endsWith('.js') || script.startsWith('-')) return undefined;
  return { node, script, args };
}

export class StandbyContainer {
  private current: Waiting | undefined;
  private filling: Promise<void> | undefined;
  private refillTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly stateDir: string,
    private readonly log: (message: string) => void,
    /** Whether a plan (by replicaPlanKey) is still some revision's: a standby for another is not started. */
    private readonly wanted: (planKey: string) => boolean,
  ) {}

  static canRun(plan: LaunchPlan): boolean {
    return standbyArgv(plan) !== undefined;
  }

  /** The image tree the waiting container runs from, if there is one (it must not be collected). */
  get rootfs(): string | undefined {
    return this.current?.rootfs;
  }

  /** True while a standby container is up for `plan`. */
  isFor(plan: LaunchPlan): boolean {
    return this.current?.key === replicaPlanKey(plan) && this.current.container.exit === undefined;
  }

  /** Makes sure a standby for `plan` is up `delayMs` from now (replacing one for another plan). */
  fillSoon(plan: LaunchPlan, runtime: ContainerRuntime, limits: ContainerLimits, delayMs = REFILL_DELAY_MS): void {
    if (this.closed || !StandbyContainer.canRun(plan)) return;
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (this.filling || this.isFor(plan) || !this.wanted(replicaPlanKey(plan))) return;
      this.filling = this.fill(plan, runtime, limits)
        .catch((err: Error) => this.log(`standby container not started: ${err.message}`))
        .finally(() => (this.filling = undefined));
    }, delayMs);
    this.refillTimer.unref();
  }

  private async fill(plan: LaunchPlan, runtime: ContainerRuntime, limits: ContainerLimits): Promise<void> {
    await this.discard();
    const argv = standbyArgv(plan)!;
    const launch = plan.container!;
    const launcherDir = path.join(this.stateDir, 'gateway', 'runtime', 'standby-launcher');
    await mkdir(launcherDir, { recursive: true });
    const launcher = path.join(launcherDir, 'launcher.js');
    const tmp = `${launcher}.${process.pid}.tmp`;
    await copyFile(await bundleLauncher(this.stateDir), tmp);
    await rename(tmp, launcher);

    const name = `c-${randomBytes(6).toString('hex')}`;
    const paths = containerPaths(this.stateDir);
    const socketDir = path.join(paths.sockets, name);
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    const logDir = path.join(this.stateDir, 'gateway', 'logs', '_standby');
    await mkdir(logDir, { recursive: true });
    const logFile = path.join(logDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${name}.log`);
    if (this.closed) return;
    let container: Container;
    try {
      container = await runContainer({
        rootfs: launch.rootfs,
        image: { ...launch.config, Entrypoint: [argv.node, path.posix.join(LAUNCHER_DIR_IN_CONTAINER, 'launcher.js')] },
        args: [],
        limits,
        bindMounts: [
          { hostPath: socketDir, containerPath: SOCKET_DIR_IN_CONTAINER, ownedByContainer: true },
          { hostPath: launcherDir, containerPath: LAUNCHER_DIR_IN_CONTAINER, readOnly: true },
        ],
        env: {
          ...containerHostEnv(),
          FERRY_SOCKET: path.posix.join(SOCKET_DIR_IN_CONTAINER, SOCKET_FILE),
          FERRY_STANDBY_PREWARM: argv.script,
          FERRY_STANDBY_COMMAND_SOCKET: path.posix.join(SOCKET_DIR_IN_CONTAINER, COMMAND_SOCKET_FILE),
        },
        runtime,
        id: `ferry-${name}`,
        bundlesDir: paths.bundles,
        logPath: logFile,
      });
    } catch (err) {
      await rm(socketDir, { recursive: true, force: true });
      throw err;
    }
    const entry: Waiting = {
      key: replicaPlanKey(plan),
      container,
      runtime,
      socketDir,
      logFile,
      rootfs: launch.rootfs,
      script: argv.script,
      args: argv.args,
      cwd: launch.config.WorkingDir || '/',
    };
    if (this.closed) {
      await removeWaiting(entry);
      return;
    }
    this.current = entry;
    this.log(`standby container ${container.id} (${runtime.name}) started for the next cold start of ${plan.key}`);
    void container.exited.then(() => {
      if (this.current !== entry) return;
      this.current = undefined;
      this.log(`standby container ${container.id} exited (${container.exit?.reason}); see ${logFile}`);
      void removeWaiting(entry);
    });
  }

  /**
   * The waiting container for `plan`, given its command: it then runs the plan's server and is the
   * replica. Undefined when there is none for this plan (or it did not take its command in time).
   */
  async take(plan: LaunchPlan): Promise<TakenStandbyContainer | undefined> {
    const entry = this.current;
    if (!entry || this.closed || !this.isFor(plan)) return undefined;
    this.current = undefined;
    const commandSocket = path.join(entry.socketDir, COMMAND_SOCKET_FILE);
    const command: LaunchCommand = {
      script: entry.script,
      args: entry.args,
      env: {},
      cwd: entry.cwd,
      inheritEnv: true,
    };
    try {
      await sendCommand(commandSocket, command, entry.container);
    } catch (err) {
      this.log(`standby container ${entry.container.id} not used: ${(err as Error).message}`);
      void removeWaiting(entry);
      return undefined;
    }
    return {
      container: entry.container,
      runtime: entry.runtime,
      socketPath: path.join(entry.socketDir, SOCKET_FILE),
      logFile: entry.logFile,
      rootfs: entry.rootfs,
    };
  }

  /** Drops the waiting container unless its plan is one of `keys` (the plans of live revisions). */
  async retainOnly(keys: ReadonlySet<string>): Promise<void> {
    if (this.current && !keys.has(this.current.key)) await this.discard();
  }

  private async discard(): Promise<void> {
    const entry = this.current;
    this.current = undefined;
    if (entry) await removeWaiting(entry);
  }

  /** Removes the waiting container (it is nobody's replica yet), after any start in progress. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refillTimer);
    await this.filling;
    await this.discard();
  }
}

async function removeWaiting(entry: Waiting): Promise<void> {
  await entry.container.remove().catch(() => undefined);
  await rm(entry.socketDir, { recursive: true, force: true });
}

/** Connects to the launcher's command socket (waiting while it still loads the server) and sends `command`. */
async function sendCommand(socketPath: string, command: LaunchCommand, container: Container): Promise<void> {
  const deadline = Date.now() + TAKE_WAIT_MS;
  for (;;) {
    if (container.exit) throw new Error(`it exited (${container.exit.reason})`);
    try {
      await new Promise<void>((resolve, reject) => {
        const conn = net.connect(socketPath);
        conn.once('error', reject);
        conn.once('connect', () => conn.end(`${JSON.stringify(command)}\n`));
        conn.once('close', (hadError) => (hadError ? reject(new Error('connection failed')) : resolve()));
      });
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
        throw new Error(`its command socket did not answer (${(err as Error).message})`);
      }
      await sleep(5);
    }
  }
}
