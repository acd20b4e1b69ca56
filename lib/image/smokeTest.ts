/**
 * The smoke test of a built model image: unpack this machine's platform of it from its built layers
 * (builtRootfs.ts: the same bytes the registry holds by digest), start its server (a container under the
 * configured runtime, or a plain process when the configuration says so: imageServer.ts), send it one
 * real inference, and compare the answer with onnxruntime's own
 * output for the same model file, session options and input. The input is generated from the model's
 * input specs the way the optimize stage makes its inputs (lib/optimize/sampleInputs.ts), and the
 * comparison is the one agreement definition (lib/optimize/agreement.ts).
 *
 * The image serves exactly the reference's model with the same settings, so the two should agree to
 * float rounding (sums taken in another order by other threads): anything more is a broken image.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { ContainerLimits } from '../container/bundleSpec';
import type { BuiltImage } from '../oci/image';
import { analyzeModel } from '../onnx/analyze';
import { decodeModel } from '../onnx/model';
import { compareOutputRuns, type NamedTensors } from '../optimize/agreement';
import { generateFeeds, isBatchDynamic, toOrtFeeds } from '../optimize/sampleInputs';
import type { Feeds } from '../optimize/technique';
import type { AgreementFigures } from '../optimize/types';
import { float16Values, inferOverSocket } from './binaryInference';
import { unpackBuiltImage } from './builtRootfs';
import { type ImageRunner, type ImageServer, startImageServer, waitUntilReady } from './imageServer';

/** How closely the image's answer must follow onnxruntime's on this machine. */
export const SMOKE_AGREEMENT = {
  minCosine: 0.9999,
  /** Every row's arg-max, for outputs that hold class scores. */
  minTop1: 1,
  /** Largest |difference| over the largest |reference value| (at least 1). */
  maxRelativeError: 1e-4,
} as const;
/** Rows of the request when the batch dim is dynamic (else 1); the seed the optimize stage's batch-1 feed uses. */
const SMOKE_ROWS = 4;
const SMOKE_SEED = 1;
const MiB = 1 << 20;

export interface SmokeTestRecord {
  /** What ran the image: youki, runc, or process (a plain process: FERRY_CONTAINER_RUNTIME=process). */
  runtime: string;
  runtimeVersion: string;
  /** This machine's platform, the one tested, and its manifest's digest. */
  platform: string;
  platformDigest: string;
  model: string;
  /** The request's inputs and their dims, generated with this seed from the model's input specs. */
  request: { seed: number; inputs: Record<string, number[]> };
  agreement: AgreementFigures & { outputs: string[] };
  /** Milliseconds: unpacking the image, start to ready, the inference, the whole test. */
  timings: { unpackMs: number; readyMs: number; inferMs: number; totalMs: number };
}

/** The image failed its smoke test: it would not start, answer, or answer right. Retrying will not help. */
export class SmokeTestError extends Error {
  constructor(
    message: string,
    /** The last lines the image's server wrote ('' when it never ran). */
    readonly logTail: string,
    readonly runtime: string,
  ) {
    super(logTail ? `${message}\n--- server log (last lines) ---\n${logTail}` : message);
  }
}

export interface SmokeTestOptions {
  /** This machine's platform of the image, built (its layer blobs on disk). */
  image: BuiltImage;
  /** What the image is pushed as: its index's digest, for a multi-platform image. */
  resolvedDigest?: string;
  /** The cached unpacked runtime layers go under here (builtRootfs.ts). */
  cacheDir: string;
  /** The model the image serves, as a file here, with the session options the image gives the server. */
  model: { name: string; onnxPath: string; sessionOptions?: Record<string, unknown> };
  runner: ImageRunner;
  /** Scratch space: the unpacked image, the socket, the server's log. */
  workDir: string;
  /** Default: 1 CPU, and 512 MiB plus three times the model's size. */
  limits?: ContainerLimits;
  readyTimeoutMs?: number;
  inferTimeoutMs?: number;
  /** Called as each step begins (for heartbeats and progress). */
  onStep?: (step: 'reference' | 'unpacking' | 'starting' | 'inferring' | 'stopping') => void;
}

function numericOutputs(result: ort.InferenceSession.ReturnType): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(result)) {
    if (typeof t.data === 'string' || Array.isArray(t.data) || t.type === 'string') continue;
    out[name] =
      t.type === 'float16'
        ? { type: 'float16', dims: t.dims, data: float16Values(t.data as Uint16Array) }
        : { type: t.type, dims: t.dims, data: t.data as ArrayLike<number | bigint> };
  }
  return out;
}

async function referenceOutputs(modelBytes: Buffer, sessionOptions: Record<string, unknown> | undefined, feeds: Feeds) {
  const session = await ort.InferenceSession.create(modelBytes, {
    ...(sessionOptions as ort.InferenceSession.SessionOptions | undefined),
    logSeverityLevel: 3,
  });
  try {
    return numericOutputs(await session.run(toOrtFeeds(feeds)));
  } finally {
    await session.release();
  }
}

function largestMagnitude(tensors: NamedTensors): number {
  let max = 0;
  for (const t of Object.values(tensors)) {
    for (let i = 0; i < t.data.length; i++) max = Math.max(max, Math.abs(Number(t.data[i])));
  }
  return max;
}

/** The agreement figures, and the reason they fail the smoke test if they do. */
export function judgeSmokeAnswer(
  reference: NamedTensors,
  answer: NamedTensors,
  rows: number,
): { agreement: SmokeTestRecord['agreement']; failure?: string } {
  const c = compareOutputRuns([reference], [answer]);
  const agreement = { cosine: c.cosine, maxAbsError: c.maxAbsError, top1: c.top1, samples: rows, outputs: c.outputs };
  const scale = Math.max(1, largestMagnitude(reference));
  const figures = `cosine ${c.cosine.toFixed(6)}, max abs error ${c.maxAbsError.toPrecision(3)}${c.top1 === null ? '' : `, top-1 ${c.top1}`}`;
  let failure: string | undefined;
  if (c.problem) failure = c.problem;
  else if (c.cosine < SMOKE_AGREEMENT.minCosine) failure = `cosine ${c.cosine} < ${SMOKE_AGREEMENT.minCosine}`;
  else if (c.top1 !== null && c.top1 < SMOKE_AGREEMENT.minTop1) failure = `top-1 agreement ${c.top1} < 1`;
  else if (c.maxAbsError > SMOKE_AGREEMENT.maxRelativeError * scale) {
    failure = `max abs error ${c.maxAbsError} > ${SMOKE_AGREEMENT.maxRelativeError} x ${scale}`;
  }
  return { agreement, failure: failure && `${failure} (${figures})` };
}

export async function smokeTestImage(opts: SmokeTestOptions): Promise<SmokeTestRecord> {
  const started = performance.now();
  const step = opts.onStep ?? (() => undefined);
  const runtime = opts.runner.kind === 'container' ? opts.runner.runtime.name : 'process';

  step('reference');
  const modelBytes = await readFile(opts.model.onnxPath);
  const analysis = analyzeModel(decodeModel(modelBytes));
  const rows = isBatchDynamic(analysis.inputs) ? SMOKE_ROWS : 1;
  const feeds = generateFeeds(analysis.inputs, { batch: rows, seed: SMOKE_SEED });
  const reference = await referenceOutputs(modelBytes, opts.model.sessionOptions, feeds);

  step('unpacking');
  const unpackStart = performance.now();
  const pulled = await unpackBuiltImage(opts.image, path.join(opts.workDir, 'image'), {
    cacheDir: opts.cacheDir,
    resolvedDigest: opts.resolvedDigest,
  });
  const unpackMs = performance.now() - unpackStart;

  step('starting');
  const limits = opts.limits ?? { cpus: 1, memoryBytes: 512 * MiB + 3 * modelBytes.length };
  const startAt = performance.now();
  let server: ImageServer;
  try {
    server = await startImageServer(pulled, opts.runner, { workDir: path.join(opts.workDir, 'server'), limits });
  } catch (err) {
    throw new SmokeTestError(`the image did not start under ${runtime}: ${(err as Error).message}`, '', runtime);
  }
  let exercised: Awaited<ReturnType<typeof exercise>> | undefined;
  let failure: unknown;
  try {
    exercised = await exercise(server, { runtime, opts, feeds, reference, rows, step });
  } catch (err) {
    failure = err;
  }
  step('stopping');
  try {
    await server.stop();
  } catch (err) {
    failure ??= err;
  }
  if (failure || !exercised) throw failure;
  const { readyAt, inferMs, agreement } = exercised;
  return {
    runtime,
    runtimeVersion: server.runnerVersion,
    platform: `${opts.image.config.os}/${opts.image.config.architecture}`,
    platformDigest: pulled.digest,
    model: opts.model.name,
    request: { seed: SMOKE_SEED, inputs: Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, f.dims])) },
    agreement,
    timings: { unpackMs, readyMs: readyAt - startAt, inferMs, totalMs: performance.now() - started },
  };
}

/** Ready, one inference, its answer judged: a SmokeTestError with the server's log tail when any fails. */
async function exercise(
  server: ImageServer,
  test: {
    runtime: string;
    opts: SmokeTestOptions;
    feeds: Feeds;
    reference: NamedTensors;
    rows: number;
    step: NonNullable<SmokeTestOptions['onStep']>;
  },
) {
  const { runtime, opts, feeds, reference, rows, step } = test;
  const failed = async (what: string, why: string) =>
    new SmokeTestError(`the image's server under ${runtime} ${what}: ${why}`, await server.logTail(), runtime);
  try {
    await waitUntilReady(server, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    throw await failed('did not become ready', (err as Error).message);
  }
  const readyAt = performance.now();
  step('inferring');
  let answer: NamedTensors;
  try {
    answer = await inferOverSocket(server.socketPath, opts.model.name, feeds, opts.inferTimeoutMs ?? 30_000);
  } catch (err) {
    throw await failed('did not answer an inference', (err as Error).message);
  }
  const inferMs = performance.now() - readyAt;
  const judged = judgeSmokeAnswer(reference, answer, rows);
  if (judged.failure) throw await failed('answered otherwise than onnxruntime on the same input', judged.failure);
  return { readyAt, inferMs, agreement: judged.agreement };
}
