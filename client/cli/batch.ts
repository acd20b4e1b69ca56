/**
 * `ferry batch <deployment | image | layout dir> --input DIR|s3://bucket/prefix --output DIR|s3://...`:
 * every request file of the input through the image's model, one response file each (runtime/batch),
 * with a progress bar; run again after a crash or Ctrl-C, it does only what is not finished.
 *
 *   the image   a folder is an OCI image layout, a name with '/' or '@' an image reference, anything
 *               else a deployment (its image, as `ferry status` shows it). A batch image runs its own
 *               /app/batch.js; any other Ferry image (a deployment's inference image) gets the batch
 *               runner written into its unpacked root, so it runs on that image's node, onnxruntime
 *               and models all the same
 *   the run     youki or runc (default: youki if installed): the image's non-root user, read-only root,
 *               CPU and memory limits; an input folder bind-mounted read-only at /batch/input, an output
 *               folder read-write at /batch/output (given to the container's user when root owns it).
 *               `--runtime process`: this machine's node in the unpacked root, no isolation, no limits
 *   s3://       the object store's endpoint and keys (FERRY_S3_*, as lib/config.ts reads them) are handed
 *               to the runner; the container shares the host's network, so it reaches the same endpoint
 *
 * Exit status: 0 every request answered; 2 some failed (listed, and under <output>/errors/); 1 the batch
 * could not run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, open as openFile, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FerryConfig, hostSearchPath } from '../../lib/config';
import { type ContainerBindMount, runContainer } from '../../lib/container/container';
import type { ContainerRuntime } from '../../lib/container/containerRuntime';
import type { ContainerUser } from '../../lib/container/imageUser';
import { launchPlanForImage } from '../../lib/gateway/launchPlan';
import { BATCH_INPUT_IN_IMAGE, BATCH_OUTPUT_IN_IMAGE, imageKind, KIND_LABEL } from '../../lib/image/imageKinds';
import { bundleServer, NODE_IN_IMAGE } from '../../lib/image/runtimeLayer';
import { hostArchitecture } from '../../lib/oci/image';
import type { PulledImage } from '../../lib/oci/pull';
import { selectPlatform } from '../../lib/oci/sourcedImage';
import { type LocationSpec, parseLocation } from '../../runtime/batch/batchLocation';
import type { BatchProgress } from '../../runtime/batch/batchRunner';
import { FerryError } from '../sdk/errors';
import { type BatchEvent, BatchEventReader, formatBatchProgress, parseContainerLogRecord } from './batchProgress';
import { type OpenedImage, openImage } from './image';
import { type CredentialFlags, parseCpus, parseMemory } from './imageFlags';
import { chooseRuntime, unpackPlatform } from './imageRun';

export interface BatchFlags extends CredentialFlags {
  input: string;
  output: string;
  concurrency?: string;
  runtime?: string;
  model?: string;
  cpus?: string;
  memory?: string;
}

/** The image of a deployment, as its status records it (`ferry status`). */
export type DeploymentImageResolver = (
  ref: string,
) => Promise<{ registry: string; repository: string; digest: string }>;

const STOP_GRACE_MS = 30_000;
const LOG_POLL_MS = 200;

/** What runs the batch: a container or a process, read and stopped the same way. */
interface RunningBatch {
  describe: string;
  /** Resolves with the runner's exit status (128 + n for a signal). */
  exited: Promise<number>;
  stop(): Promise<void>;
  logTail(): string;
}

function locationOf(flag: string, raw: string): LocationSpec {
  try {
    return parseLocation(raw);
  } catch (error) {
    throw new FerryError(`${flag}: ${(error as Error).message}`);
  }
}

async function openTarget(
  config: FerryConfig,
  target: string,
  flags: CredentialFlags,
  resolveDeployment: DeploymentImageResolver,
): Promise<OpenedImage> {
  const isFolder = await stat(target).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (isFolder || target.includes('/') || target.includes('@')) return openImage(config, target, flags);
  const image = await resolveDeployment(target);
  const host = new URL(image.registry).host;
  console.log(`Deployment ${target}: image ${host}/${image.repository}@${image.digest}`);
  return openImage(config, `${image.registry}/${image.repository}@${image.digest}`, flags);
}

/**
 * The image's config with the batch runner as its program: a batch image's own, or for another kind the
 * bundle of runtime/batch/main.ts written into the unpacked root (the batch image's very program).
 */
async function withBatchProgram(pulled: PulledImage, repoRoot: string): Promise<PulledImage> {
  const config = pulled.config.config ?? {};
  const kind = config.Labels?.[KIND_LABEL] ?? 'inference';
  const batch = imageKind('batch');
  if (kind === 'batch') return pulled;
  const bundle = await bundleServer(path.join(repoRoot, batch.entry), repoRoot, { telemetry: batch.telemetry });
  await writeFile(path.join(pulled.rootfs, batch.programInImage), bundle, { mode: 0o644 });
  console.log(`The image is a ${kind} image: running the batch runner on its runtime and models.`);
  return {
    ...pulled,
    config: { ...pulled.config, config: { ...config, Entrypoint: [NODE_IN_IMAGE, batch.programInImage], Cmd: [] } },
  };
}

function s3Env(config: FerryConfig, uses: boolean): Record<string, string> {
  if (!uses) return {};
  return {
    FERRY_S3_ENDPOINT: config.s3.endpoint,
    FERRY_S3_REGION: config.s3.region,
    FERRY_S3_ACCESS_KEY: config.s3.accessKeyId,
    FERRY_S3_SECRET_KEY: config.s3.secretAccessKey,
  };
}

function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

function startProcess(pulled: PulledImage, env: Record<string, string>, onText: (text: string) => void): RunningBatch {
  const plan = launchPlanForImage(pulled);
  const child: ChildProcess = spawn(plan.command, plan.args, {
    cwd: plan.cwd,
    env: { PATH: hostSearchPath(), ...plan.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: Ctrl-C is ours to pass on, once
  });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-64 << 10);
  };
  child.stdout!.on('data', (chunk: Buffer) => onText(chunk.toString()));
  child.stderr!.on('data', keep);
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => resolve(1));
    child.once('exit', (code, signal) => resolve(signal ? 128 + (os.constants.signals[signal] ?? 15) : (code ?? 1)));
  });
  return {
    describe: `process ${child.pid} (${path.basename(plan.command)}; no isolation, no CPU or memory limits)`,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const late = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS, true)]);
      if (late) child.kill('SIGKILL');
      await exited;
    },
    logTail: () => tail(log),
  };
}

/** Follows a container's k8s-file log: stdout text to `onText`, everything kept for the tail. */
function followContainerLog(logPath: string, onText: (text: string) => void): { stop(): Promise<void>; log(): string } {
  let offset = 0;
  let pending = '';
  let kept = '';
  let stopped = false;
  const readNew = async () => {
    const handle = await openFile(logPath, 'r').catch(() => undefined);
    if (!handle) return;
    try {
      const { size } = await handle.stat();
      if (size <= offset) return;
      const buffer = Buffer.alloc(size - offset);
      await handle.read(buffer, 0, buffer.length, offset);
      offset = size;
      pending += buffer.toString('utf8');
      const records = pending.split('\n');
      pending = records.pop()!;
      for (const record of records) {
        const parsed = parseContainerLogRecord(record);
        if (!parsed) continue;
        const text = parsed.partial ? parsed.text : `${parsed.text}\n`;
        if (parsed.stream === 'stdout') onText(text);
        else kept = (kept + text).slice(-64 << 10);
      }
    } finally {
      await handle.close();
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await readNew();
      await sleep(LOG_POLL_MS);
    }
    await readNew();
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
    log: () => tail(kept),
  };
}

/** Who the container runs as: the output folder's owner when that is not root, else the image's user. */
async function containerUserFor(output: LocationSpec): Promise<ContainerUser | undefined> {
  if (output.kind !== 'folder') return undefined;
  const owner = await stat(output.dir);
  return owner.uid === 0 || owner.gid === 0 ? undefined : { uid: owner.uid, gid: owner.gid, additionalGids: [] };
}

async function startContainer(
  pulled: PulledImage,
  runtime: ContainerRuntime,
  locations: { input: LocationSpec; output: LocationSpec },
  env: Record<string, string>,
  limits: { cpus: number; memoryBytes: number },
  bundlesDir: string,
  onText: (text: string) => void,
): Promise<RunningBatch> {
  const bindMounts: ContainerBindMount[] = [];
  const inContainer = { ...env };
  const user = await containerUserFor(locations.output);
  if (locations.input.kind === 'folder') {
    bindMounts.push({ hostPath: locations.input.dir, containerPath: BATCH_INPUT_IN_IMAGE, readOnly: true });
    inContainer.FERRY_BATCH_INPUT = BATCH_INPUT_IN_IMAGE;
  }
  if (locations.output.kind === 'folder') {
    bindMounts.push({
      hostPath: locations.output.dir,
      containerPath: BATCH_OUTPUT_IN_IMAGE,
      ownedByContainer: user === undefined,
    });
    inContainer.FERRY_BATCH_OUTPUT = BATCH_OUTPUT_IN_IMAGE;
  }
  const container = await runContainer({
    rootfs: pulled.rootfs,
    image: pulled.config.config ?? {},
    limits,
    bindMounts,
    env: inContainer,
    runtime,
    bundlesDir,
    ...(user ? { user } : {}),
  });
  const follower = followContainerLog(container.logPath, onText);
  const exited = container.exited.then(async (exit) => {
    await follower.stop();
    return exit.exitStatus ?? 1;
  });
  return {
    describe: `container ${container.id} under ${runtime.version}`,
    exited,
    stop: async () => {
      await container.stop(STOP_GRACE_MS);
      await exited;
      await container.remove();
    },
    logTail: () => follower.log(),
  };
}

/** Draws the bar: one live line on a terminal, a line per tenth of the batch otherwise. */
class BatchProgressPrinter {
  private readonly started = performance.now();
  private shownTenth = -1;
  private live = false;
  last: BatchProgress | undefined;

  update(p: BatchProgress): void {
    this.last = p;
    const line = formatBatchProgress(p, (performance.now() - this.started) / 1000);
    if (process.stdout.isTTY) {
      process.stdout.write(`\r\x1b[2K  ${line}`);
      this.live = true;
      return;
    }
    const tenth = p.total ? Math.floor((10 * (p.alreadyDone + p.succeeded + p.failed)) / p.total) : 10;
    if (tenth > this.shownTenth) {
      this.shownTenth = tenth;
      console.log(`  ${line}`);
    }
  }

  end(): void {
    if (this.live) process.stdout.write('\n');
    this.live = false;
  }
}

async function printFailures(output: LocationSpec, failed: number): Promise<void> {
  if (failed === 0 || output.kind !== 'folder') return;
  const summary = JSON.parse(await readFile(path.join(output.dir, 'batch-summary.json'), 'utf8')) as {
    failures: Array<{ request: string; status: number; error: string }>;
  };
  for (const f of summary.failures.slice(0, 10)) console.log(`  failed  ${f.request} (${f.status}): ${f.error}`);
  if (summary.failures.length > 10) console.log(`  ... and ${summary.failures.length - 10} more`);
}

/** Runs the batch; resolves with the exit status the command should have (0, or 2 when files failed). */
export async function batchCommand(
  config: FerryConfig,
  target: string,
  flags: BatchFlags,
  resolveDeployment: DeploymentImageResolver,
): Promise<number> {
  const input = locationOf('--input', flags.input);
  const output = locationOf('--output', flags.output);
  const concurrency = flags.concurrency ?? '4';
  if (!/^\d+$/.test(concurrency) || Number(concurrency) < 1 || Number(concurrency) > 1024) {
    throw new FerryError(`--concurrency must be an integer from 1 to 1024, got "${concurrency}"`);
  }
  const limits = { cpus: parseCpus(flags.cpus ?? '2'), memoryBytes: parseMemory(flags.memory ?? '2Gi') };
  if (input.kind === 'folder') {
    const isDir = await stat(input.dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) throw new FerryError(`--input ${flags.input} is not a folder`);
  }
  if (output.kind === 'folder') await mkdir(output.dir, { recursive: true });
  const runtime = await chooseRuntime(flags.runtime);
  const opened = await openTarget(config, target, flags, resolveDeployment);
  const platform = selectPlatform(opened.image, hostArchitecture());

  const runsDir = path.join(config.stateDir, 'batch-run');
  await mkdir(runsDir, { recursive: true });
  // Resolved: runc refuses a rootfs path with a symlink in it (the state dir may be one).
  const workDir = await realpath(await mkdtemp(path.join(runsDir, 'run-')));
  const printer = new BatchProgressPrinter();
  let summary: BatchProgress | undefined;
  const reader = new BatchEventReader((event: BatchEvent) => {
    if (event.ferryBatch === 'progress') printer.update(event);
    else summary = event;
  });
  let running: RunningBatch | undefined;
  let stopSignal: string | undefined;
  const onSignal = (signal: string) => {
    if (stopSignal) return;
    stopSignal = signal;
    printer.end();
    console.log(`${signal}: finishing the requests in flight, then stopping (run the same command again to resume)`);
    void running?.stop();
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    console.log(`Unpacking ${opened.image.name} (linux/${platform.architecture}, ${platform.digest.slice(0, 19)})...`);
    const pulled = await withBatchProgram(await unpackPlatform(opened, platform, workDir, flags), config.repoRoot);
    const env: Record<string, string> = {
      FERRY_BATCH_INPUT: input.kind === 'folder' ? input.dir : flags.input,
      FERRY_BATCH_OUTPUT: output.kind === 'folder' ? output.dir : flags.output,
      FERRY_BATCH_CONCURRENCY: concurrency,
      ...(flags.model ? { FERRY_BATCH_MODEL: flags.model } : {}),
      ...s3Env(config, input.kind === 'bucket' || output.kind === 'bucket'),
    };
    const onText = (text: string) => reader.push(text);
    running =
      runtime === 'process'
        ? startProcess(pulled, env, onText)
        : await startContainer(pulled, runtime, { input, output }, env, limits, path.join(workDir, 'bundles'), onText);
    console.log(`Batch ${flags.input} -> ${flags.output}, ${concurrency} at a time (${running.describe})`);
    const status = await running.exited;
    printer.end();
    const done = summary ?? printer.last;
    if (status === 0 || status === 2) {
      if (done) {
        console.log(
          `Done: ${done.succeeded} answered now, ${done.alreadyDone} answered before, ${done.failed} failed, of ${done.total}; ` +
            `responses in ${flags.output}`,
        );
      }
      await printFailures(output, done?.failed ?? 0);
      return status;
    }
    if (stopSignal) {
      console.log(`Stopped. ${done ? `${done.alreadyDone + done.succeeded} of ${done.total} answered so far.` : ''}`);
      return 1;
    }
    const log = running.logTail();
    throw new FerryError(`the batch runner exited with status ${status}${log ? `:\n${log}` : ''}`);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    await running?.stop().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }
}
