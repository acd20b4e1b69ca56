/**
 * `ferry image run REF|DIR --port N`: one image served on 127.0.0.1:N until Ctrl-C.
 *
 * The runtime is found first (an uninstalled one fails before anything is downloaded), then the image's
 * documents are read and this machine's platform chosen (an image for another architecture is refused),
 * then the layers are pulled or read from the layout and unpacked into a folder of the state dir, which
 * goes when the server stops. Under youki or runc the server runs as a container (lib/container: the
 * image's non-root user, read-only root, CPU and memory limits), in the host's network namespace so it
 * listens on 127.0.0.1:N itself; under `process` it runs as a plain process of this machine's node, the
 * local target's fallback, with no limits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FerryConfig } from '../../lib/config';
import { type Container, runContainer } from '../../lib/container/container';
import {
  type ContainerRuntime,
  findRuntime,
  preferredRuntime,
  RuntimeNotFoundError,
} from '../../lib/container/containerRuntime';
import { launchPlanForImage } from '../../lib/gateway/launchPlan';
import { replicaEnv } from '../../lib/gateway/replicaProcess';
import { hostArchitecture } from '../../lib/oci/image';
import { type PulledImage, pullImage } from '../../lib/oci/pull';
import { type PlatformImage, selectPlatform, unpackLayoutPlatform } from '../../lib/oci/sourcedImage';
import { FerryError } from '../sdk/errors';
import { type OpenedImage, openImage } from './image';
import { type CredentialFlags, parseCpus, parseMemory, parseRuntime, registryCredentials } from './imageFlags';
import { formatImageRef } from './imageRef';

export interface ImageRunFlags extends CredentialFlags {
  port: string;
  cpus?: string;
  memory?: string;
  runtime?: string;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

/** What runs the server: a container or a process, stopped and waited for the same way. */
interface RunningServer {
  describe: string;
  /** Resolves with why it ended. */
  exited: Promise<string>;
  stop(): Promise<void>;
  logTail(): Promise<string>;
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FerryError(`--port must be 1-65535, got "${raw}"`);
  return port;
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new FerryError(
          error.code === 'EADDRINUSE' ? `port ${port} on 127.0.0.1 is in use` : `cannot listen on 127.0.0.1:${port}`,
        ),
      ),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** The runtime a `--runtime` flag names (default youki if installed, else runc); `ferry batch` uses it too. */
export async function chooseRuntime(name: string | undefined): Promise<ContainerRuntime | 'process'> {
  const wanted = parseRuntime(name);
  if (wanted === 'process') return 'process';
  try {
    return wanted ? await findRuntime(wanted) : await preferredRuntime();
  } catch (error) {
    if (error instanceof RuntimeNotFoundError) {
      throw new FerryError(`${error.message.split(' (looked for')[0]}; or run it with --runtime process`);
    }
    throw error;
  }
}

function startContainerServer(
  pulled: PulledImage,
  runtime: ContainerRuntime,
  port: number,
  limits: { cpus: number; memoryBytes: number },
  bundlesDir: string,
): Promise<RunningServer> {
  return runContainer({
    rootfs: pulled.rootfs,
    image: pulled.config.config,
    limits,
    env: { PORT: String(port), HOST: '127.0.0.1' },
    runtime,
    bundlesDir,
  }).then((container: Container) => ({
    describe: `container ${container.id} under ${runtime.version}`,
    exited: container.exited.then((exit) => exit.reason),
    stop: async () => {
      await container.stop(STOP_GRACE_MS);
      await container.remove();
    },
    logTail: async () => tail(await readFile(container.logPath, 'utf8').catch(() => '')),
  }));
}

function startProcessServer(pulled: PulledImage, port: number): RunningServer {
  const plan = launchPlanForImage(pulled);
  const child: ChildProcess = spawn(plan.command, plan.args, {
    cwd: plan.cwd,
    env: replicaEnv(plan, port),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-64 << 10);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`did not start: ${error.message}`));
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
  });
  return {
    describe: `process ${child.pid} (${path.basename(plan.command)}; no CPU or memory limits)`,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const late = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS, true)]);
      if (late) child.kill('SIGKILL');
      await exited;
    },
    logTail: async () => tail(output),
  };
}

function tail(log: string, lines = 15): string {
  return log.trim().split('\n').slice(-lines).join('\n');
}

async function waitUntilReady(url: string, server: RunningServer): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let ended: string | undefined;
  void server.exited.then((why) => {
    ended = why;
  });
  while (Date.now() < deadline) {
    if (ended !== undefined) {
      const log = await server.logTail();
      throw new FerryError(`the image's server ${ended} before it was ready${log ? `:\n${log}` : ''}`);
    }
    const ready = await fetch(`${url}/v2/health/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) return;
    await sleep(100);
  }
  const log = await server.logTail();
  throw new FerryError(`the image's server was not ready within ${READY_TIMEOUT_MS / 1000} s${log ? `:\n${log}` : ''}`);
}

/** Reads one platform of an opened image (a layout or a registry) and unpacks it into `<workDir>/rootfs`. */
export function unpackPlatform(
  opened: OpenedImage,
  platform: PlatformImage,
  workDir: string,
  flags: CredentialFlags,
): Promise<PulledImage> {
  return opened.layoutDir
    ? unpackLayoutPlatform(opened.layoutDir, opened.image, platform, workDir)
    : pullImage({ ...opened.ref!, reference: platform.digest }, workDir, {
        architecture: platform.architecture,
        credentials: registryCredentials(flags),
      });
}

export async function imageRunCommand(config: FerryConfig, target: string, flags: ImageRunFlags): Promise<void> {
  // Listened for from the start: Ctrl-C reaches a plain-process server too (same process group), and
  // its exit must not be taken for a crash.
  let stopSignal: string | undefined;
  const signalled = new Promise<string>((resolve) => {
    const on = (signal: string) => {
      stopSignal ??= signal;
      resolve(signal);
    };
    process.once('SIGINT', () => on('SIGINT'));
    process.once('SIGTERM', () => on('SIGTERM'));
  });
  const port = parsePort(flags.port);
  const limits = { cpus: parseCpus(flags.cpus ?? '1'), memoryBytes: parseMemory(flags.memory ?? '1Gi') };
  const runtime = await chooseRuntime(flags.runtime);
  await assertPortFree(port);
  const opened = await openImage(config, target, flags);
  const platform = selectPlatform(opened.image, hostArchitecture());

  const runsDir = path.join(config.stateDir, 'image-run');
  await mkdir(runsDir, { recursive: true });
  // Resolved: runc refuses a rootfs path with a symlink in it (the state dir may be one).
  const workDir = await realpath(await mkdtemp(path.join(runsDir, 'run-')));
  let server: RunningServer | undefined;
  try {
    console.log(`Unpacking ${opened.image.name} (linux/${platform.architecture}, ${platform.digest.slice(0, 19)})...`);
    const pulled = await unpackPlatform(opened, platform, workDir, flags);
    server =
      runtime === 'process'
        ? startProcessServer(pulled, port)
        : await startContainerServer(pulled, runtime, port, limits, path.join(workDir, 'bundles'));
    const url = `http://127.0.0.1:${port}`;
    await waitUntilReady(url, server);
    const source = opened.ref ? formatImageRef(opened.ref) : opened.image.name;
    console.log(`Serving ${source} at ${url} (${server.describe}); Ctrl-C stops it.`);

    const first = await Promise.race([signalled.then((s) => ({ signal: s })), server.exited.then((why) => ({ why }))]);
    if ('why' in first && stopSignal === undefined) {
      const log = await server.logTail();
      throw new FerryError(`the image's server ${first.why}${log ? `:\n${log}` : ''}`);
    }
    console.log(`${stopSignal}: stopping the server...`);
    await server.stop();
    server = undefined;
    console.log('Stopped.');
  } finally {
    await server?.stop().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }
}
