/**
 * An image's inference server started from its unpacked root filesystem for a short job (the container
 * stage's smoke test): as a container under youki or runc (lib/container: the image's non-root user,
 * read-only root, limits), or — when the configuration says `process` — as a plain process of this
 * machine's node, the way the local target runs an image without a container (lib/gateway/launchPlan.ts).
 * Either way it listens on a Unix socket in a folder of its own, its output goes to a log file whose tail
 * says why it failed, and stop() leaves nothing running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplicaRuntimeSetting } from '../config';
import type { ContainerLimits } from '../container/bundleSpec';
import { type Container, runContainer } from '../container/container';
import {
  type ContainerRuntime,
  findRuntime,
  locateBinary,
  RUNTIME_NAMES,
  RuntimeNotFoundError,
} from '../container/containerRuntime';
import { launchPlanForImage } from '../gateway/launchPlan';
import { replicaEnv } from '../gateway/replicaProcess';
import type { PulledImage } from '../oci/pull';

export type ImageRunner = { kind: 'container'; runtime: ContainerRuntime } | { kind: 'process'; reason: string };

/** The configured runtime cannot run containers here (not installed, or no root): retrying will not help. */
export class ImageRunnerUnavailableError extends Error {}

/**
 * The runner `setting` (lib/config.ts `replicas.runtime`, FERRY_CONTAINER_RUNTIME) asks for: `process` as said; youki or runc, which must be installed; `auto`, youki
 * if installed, else runc. A missing runtime is an error naming the install script, never a quiet fallback.
 */
export async function imageRunnerFor(setting: ReplicaRuntimeSetting): Promise<ImageRunner> {
  if (setting === 'process') return { kind: 'process', reason: 'FERRY_CONTAINER_RUNTIME=process' };
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new ImageRunnerUnavailableError(
      `containers need root here (this process runs as uid ${uid}); set FERRY_CONTAINER_RUNTIME=process to run the image's server as a plain process`,
    );
  }
  try {
    await locateBinary('conmon');
    if (setting !== 'auto') return { kind: 'container', runtime: await findRuntime(setting) };
    const missing: string[] = [];
    for (const name of RUNTIME_NAMES) {
      try {
        return { kind: 'container', runtime: await findRuntime(name) };
      } catch (err) {
        if (!(err instanceof RuntimeNotFoundError)) throw err;
        missing.push(err.message);
      }
    }
    throw new RuntimeNotFoundError(`no container runtime: ${missing.join('; ')}`);
  } catch (err) {
    if (err instanceof RuntimeNotFoundError) throw new ImageRunnerUnavailableError(err.message);
    throw err;
  }
}

export interface ImageServer {
  /** youki, runc or process. */
  readonly runner: string;
  /** e.g. "youki version 0.7.0", or the node that ran the process. */
  readonly runnerVersion: string;
  readonly socketPath: string;
  /** Why the server ended, once it has (before stop() was asked for). */
  readonly exitReason: string | undefined;
  /** The last `lines` lines the server wrote (stdout and stderr together). */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, SIGKILL after the grace period; then nothing of it is left (container, cgroup, bundle). */
  stop(graceMs?: number): Promise<void>;
}

export interface StartImageServerOptions {
  /** The socket's folder and the log go here. */
  workDir: string;
  /** For a container; a plain process has none. */
  limits: ContainerLimits;
}

const SOCKET_IN_CONTAINER_DIR = '/run/ferry';
const SOCKET_NAME = 'server.sock';
const LOG_TAIL_LINES = 40;

async function tailOf(logPath: string, lines: number, strip?: RegExp): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((line) => (strip ? line.replace(strip, '') : line).replace(ANSI_ESCAPE, ''))
    .filter((line) => line.trim() !== '')
    .slice(-lines)
    .join('\n');
}

/** Terminal colour codes (onnxruntime colours its warnings): noise in a message. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what it matches
const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g;

/** conmon's k8s-file lines: `<RFC 3339 time> <stdout|stderr> <F|P> <text>`. */
const CONMON_LINE_PREFIX = /^\S+ (stdout|stderr) [FP] /;

async function startContainer(image: PulledImage, runtime: ContainerRuntime, opts: StartImageServerOptions) {
  const socketDir = path.join(opts.workDir, 'socket');
  await mkdir(socketDir, { recursive: true });
  const logPath = path.join(opts.workDir, 'server.log');
  const container: Container = await runContainer({
    id: `ferry-smoke-${randomBytes(6).toString('hex')}`,
    rootfs: image.rootfs,
    image: image.config.config,
    limits: opts.limits,
    bindMounts: [{ hostPath: socketDir, containerPath: SOCKET_IN_CONTAINER_DIR, ownedByContainer: true }],
    env: { FERRY_SOCKET: `${SOCKET_IN_CONTAINER_DIR}/${SOCKET_NAME}` },
    runtime,
    logPath,
  });
  const server: ImageServer = {
    runner: runtime.name,
    runnerVersion: runtime.version,
    socketPath: path.join(socketDir, SOCKET_NAME),
    get exitReason() {
      return container.exit?.reason;
    },
    logTail: (lines = LOG_TAIL_LINES) => tailOf(logPath, lines, CONMON_LINE_PREFIX),
    async stop(graceMs = 5_000) {
      await container.stop(graceMs);
      await container.remove();
    },
  };
  return server;
}

async function startProcess(image: PulledImage, opts: StartImageServerOptions): Promise<ImageServer> {
  const plan = launchPlanForImage(image);
  const socketPath = path.join(opts.workDir, SOCKET_NAME);
  const logPath = path.join(opts.workDir, 'server.log');
  await mkdir(opts.workDir, { recursive: true });
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    // Detached: its own process group, so stop() ends whatever it started too.
    child = spawn(plan.command, plan.args, {
      cwd: plan.cwd,
      env: replicaEnv(plan, { socketPath }),
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  let exitReason: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitReason = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitReason = `could not be started: ${err.message}`;
      resolve();
    });
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // the group is gone already
    }
  };
  return {
    runner: 'process',
    runnerVersion: `node ${process.version} (a plain process: no container)`,
    socketPath,
    get exitReason() {
      return exitReason;
    },
    logTail: (lines = LOG_TAIL_LINES) => tailOf(logPath, lines),
    async stop(graceMs = 5_000) {
      if (exitReason === undefined) {
        signalGroup('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs, true)]);
        if (timedOut) signalGroup('SIGKILL');
        await exited;
      }
      signalGroup('SIGKILL'); // anything the server left in its group
    },
  };
}

export async function startImageServer(
  image: PulledImage,
  runner: ImageRunner,
  opts: StartImageServerOptions,
): Promise<ImageServer> {
  return runner.kind === 'container' ? startContainer(image, runner.runtime, opts) : startProcess(image, opts);
}

function getStatus(socketPath: string, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, method: 'GET', path: urlPath, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

export class ServerNotReadyError extends Error {}

/** Resolves once the server answers 200 on /v2/health/ready; rejects when it ends first or `timeoutMs` passes. */
export async function waitUntilReady(server: ImageServer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.exitReason) throw new ServerNotReadyError(`the server ${server.exitReason} before it was ready`);
    if ((await getStatus(server.socketPath, '/v2/health/ready')) === 200) return;
    if (Date.now() > deadline) throw new ServerNotReadyError(`the server was not ready within ${timeoutMs} ms`);
    await sleep(25);
  }
}
