/**
 * Running one container: the run loop around the runtime.
 *
 *   runContainer(request)     resolve the user, write <bundles>/<id>/config.json (bundleSpec.ts),
 *                             `create` under conmon (containerMonitor.ts), `start`
 *   container.exited          the exit status and its reason, read while the stopped container still
 *                             holds its cgroup: an OOM kill is SIGKILL (137) with the cgroup's
 *                             oom_kill counter above zero
 *   container.stop(graceMs)   SIGTERM, then SIGKILL after the grace period
 *   container.remove()        `delete --force`, whatever is left of the cgroup, the bundle folder
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../config';
import type { OciImageConfig } from '../oci/image';
import { type BindMount, bundleSpec, type ContainerLimits } from './bundleSpec';
import { createUnderMonitor, waitForExitStatus } from './containerMonitor';
import {
  type ContainerRuntime,
  containerState,
  deleteContainer,
  killContainer,
  locateBinary,
  preferredRuntime,
  startContainerProcess,
} from './containerRuntime';
import { HostCgroups } from './hostCgroups';
import { type ContainerUser, imageUser } from './imageUser';
import type { SeccompArchitecture } from './seccompProfile';

export interface ContainerBindMount extends BindMount {
  /**
   * Give the host folder to the container's user (chown uid:gid) before the start: for a folder the
   * container writes into, such as the one its FERRY_SOCKET lives in.
   */
  ownedByContainer?: boolean;
}

export interface RunContainerRequest {
  /** Absolute path of the unpacked image root filesystem (lib/oci/pull.ts `pullImage().rootfs`). */
  rootfs: string;
  image: Pick<OciImageConfig['config'], 'Entrypoint' | 'Cmd' | 'Env' | 'WorkingDir' | 'User'>;
  limits: ContainerLimits;
  bindMounts?: readonly ContainerBindMount[];
  env?: Readonly<Record<string, string>>;
  /** Replaces the image's Cmd. */
  args?: readonly string[];
  /** Instead of the image's User (which is what a Ferry image sets); never root. */
  user?: ContainerUser;
  oomScoreAdj?: number;
  /** Default: FERRY_CONTAINER_RUNTIME, else youki if installed, else runc (containerRuntime.ts). */
  runtime?: ContainerRuntime;
  /** Default: ferry-<12 hex digits>. */
  id?: string;
  /** The bundle folder goes in here; default <stateDir>/containers. */
  bundlesDir?: string;
  /** The container's stdout/stderr (conmon's log format); default <bundle>/container.log. */
  logPath?: string;
  /** Parent of each container's cgroup, below every hierarchy's root; default /ferry. */
  cgroupParent?: string;
}

export interface ContainerExit {
  /** The exit code, or 128 + the signal's number when a signal ended it (the shell's convention). */
  exitStatus: number | undefined;
  /** The signal that ended it, when one did. */
  signal?: NodeJS.Signals;
  /** The kernel's OOM killer killed the container's init: it went over its memory limit. */
  oomKilled: boolean;
  /** How many processes the OOM killer killed in the container's cgroup. */
  oomKills: number;
  /** One line for logs and records, e.g. "OOM-killed: over its 64 MiB memory limit". */
  reason: string;
}

/** What the bundle folder's container.json records, so another process can find the container again. */
interface ContainerRecord {
  id: string;
  runtime: ContainerRuntime;
  pid: number;
  cgroupPath: string;
  memoryBytes: number;
  logPath: string;
}

const SIGNAL_NAMES = Object.fromEntries(Object.entries(osConstants.signals).map(([name, n]) => [n, name])) as Record<
  number,
  NodeJS.Signals
>;

function describeExit(status: number | undefined, oomKills: number, memoryBytes: number): ContainerExit {
  const signal = status !== undefined && status > 128 ? SIGNAL_NAMES[status - 128] : undefined;
  // Only the init's own SIGKILL counts: the OOM killer may have killed a child the init survived.
  const oomKilled = oomKills > 0 && signal === 'SIGKILL';
  const mib = `${Math.round(memoryBytes / (1 << 20))} MiB`;
  let reason: string;
  if (oomKilled) reason = `OOM-killed: over its ${mib} memory limit`;
  else if (status === undefined) reason = 'exit status unknown (its monitor died before recording it)';
  else if (signal) reason = `killed by ${signal}`;
  else reason = `exited with code ${status}`;
  if (!oomKilled && oomKills > 0) reason += ` (the OOM killer killed ${oomKills} of its processes at ${mib})`;
  return { exitStatus: status, ...(signal ? { signal } : {}), oomKilled, oomKills, reason };
}

/**
 * Creates the image's /tmp (mode 1777) when the image has none. Runtimes create missing mount points
 * themselves, but not alike: runc gives a tmpfs the mode of the directory it is mounted on and makes
 * that directory 0755, so a /tmp first made by runc — or by youki for an earlier container of the same
 * image — is not writable by the non-root user.
 */
async function prepareTmpMountPoint(rootfs: string): Promise<void> {
  const tmp = path.join(rootfs, 'tmp');
  const made = await mkdir(tmp).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false;
      throw err;
    },
  );
  if (made) await chmod(tmp, 0o1777);
}

export class Container {
  /** Resolves once the container's init process has exited (the container is then "stopped"). */
  readonly exited: Promise<ContainerExit>;
  private exitInfo: ContainerExit | undefined;
  private removed = false;

  private constructor(
    private readonly record: ContainerRecord,
    readonly bundleDir: string,
    private readonly cgroups: HostCgroups,
  ) {
    this.exited = this.watchExit();
  }

  get id(): string {
    return this.record.id;
  }
  get runtime(): ContainerRuntime {
    return this.record.runtime;
  }
  /** The container init's pid, as the host sees it. */
  get pid(): number {
    return this.record.pid;
  }
  get cgroupPath(): string {
    return this.record.cgroupPath;
  }
  get logPath(): string {
    return this.record.logPath;
  }
  get hostCgroups(): HostCgroups {
    return this.cgroups;
  }
  /** Set once `exited` has resolved. */
  get exit(): ContainerExit | undefined {
    return this.exitInfo;
  }

  /** Starts a container; see RunContainerRequest. Cleans up after itself if the start fails. */
  static async run(req: RunContainerRequest): Promise<Container> {
    const [runtime, conmon, cgroups, user] = await Promise.all([
      req.runtime ?? preferredRuntime(),
      locateBinary('conmon'),
      HostCgroups.read(),
      req.user ?? imageUser(req.rootfs, req.image.User),
    ]);
    const id = req.id ?? `ferry-${randomBytes(6).toString('hex')}`;
    const bundleDir = path.join(req.bundlesDir ?? path.join(loadConfig().stateDir, 'containers'), id);
    const cgroupPath = path.posix.join(req.cgroupParent ?? '/ferry', id);
    const logPath = req.logPath ?? path.join(bundleDir, 'container.log');
    const spec = bundleSpec({
      id,
      rootfs: path.resolve(req.rootfs),
      image: req.image,
      user,
      limits: req.limits,
      bindMounts: req.bindMounts ?? [],
      ...(req.env ? { env: req.env } : {}),
      ...(req.args ? { args: req.args } : {}),
      ...(req.oomScoreAdj !== undefined ? { oomScoreAdj: req.oomScoreAdj } : {}),
      cgroupsPath: cgroupPath,
      arch: process.arch as SeccompArchitecture,
      swapAccounting: await cgroups.swapAccounting(),
    });
    await mkdir(bundleDir, { recursive: true });
    try {
      await prepareTmpMountPoint(spec.root.path);
      for (const b of req.bindMounts ?? []) {
        if (b.ownedByContainer) await chown(b.hostPath, user.uid, user.gid);
      }
      await writeFile(path.join(bundleDir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
      const { pid } = await createUnderMonitor({ conmon, runtime, id, bundleDir, logPath });
      const record: ContainerRecord = { id, runtime, pid, cgroupPath, memoryBytes: req.limits.memoryBytes, logPath };
      await writeFile(path.join(bundleDir, 'container.json'), `${JSON.stringify(record, null, 2)}\n`);
      await startContainerProcess(runtime, id);
      return new Container(record, bundleDir, cgroups);
    } catch (err) {
      await deleteContainer(runtime, id).catch(() => undefined);
      await cgroups.remove(cgroupPath);
      const log = await readFile(logPath, 'utf8').catch(() => '');
      await rm(bundleDir, { recursive: true, force: true });
      const tail = log.trim() ? `\n--- container output ---\n${log.trim().split('\n').slice(-20).join('\n')}` : '';
      throw new Error(`container ${id} (${runtime.name}) did not start: ${(err as Error).message}${tail}`);
    }
  }

  /** The container whose bundle folder is `bundleDir`, started earlier (perhaps by another process). */
  static async open(bundleDir: string): Promise<Container> {
    const record = JSON.parse(await readFile(path.join(bundleDir, 'container.json'), 'utf8')) as ContainerRecord;
    return new Container(record, bundleDir, await HostCgroups.read());
  }

  private async watchExit(): Promise<ContainerExit> {
    const status = await waitForExitStatus(this.bundleDir, this.id);
    // The stopped container still has its cgroup: read the counter before anything deletes it.
    const oomKills = await this.cgroups.oomKills(this.cgroupPath).catch(() => 0);
    this.exitInfo = describeExit(status, oomKills, this.record.memoryBytes);
    return this.exitInfo;
  }

  /** The runtime's view: "running", "stopped", ... or null once deleted. */
  async state() {
    return containerState(this.runtime, this.id);
  }

  /** Sends `signal` to the container's init; a container that already stopped is left as it is. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exitInfo) return;
    try {
      await killContainer(this.runtime, this.id, signal);
    } catch (err) {
      const state = await this.state().catch(() => null);
      if (state && state.status !== 'stopped') throw err;
    }
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`; resolves with the exit. */
  async stop(graceMs = 10_000): Promise<ContainerExit> {
    if (this.exitInfo) return this.exitInfo;
    await this.kill('SIGTERM');
    const timedOut = Symbol('timeout');
    const first = await Promise.race([this.exited, sleep(graceMs, timedOut)]);
    if (first !== timedOut) return first as ContainerExit;
    await this.kill('SIGKILL');
    return this.exited;
  }

  /**
   * Deletes the container (killing it if it still runs), its cgroup and its bundle folder. The
   * log file stays when it is outside the bundle folder.
   */
  async remove(): Promise<void> {
    if (this.removed) return;
    if (!this.exitInfo) {
      await this.kill('SIGKILL');
      await this.exited;
    }
    const state = await this.state().catch(() => null);
    if (state) await deleteContainer(this.runtime, this.id);
    const left = await this.cgroups.remove(this.cgroupPath);
    if (left.length) throw new Error(`container ${this.id}: cgroup directories left behind: ${left.join(', ')}`);
    await rm(this.bundleDir, { recursive: true, force: true });
    this.removed = true;
  }
}

export const runContainer = (req: RunContainerRequest): Promise<Container> => Container.run(req);
