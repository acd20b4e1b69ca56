/**
 * The models one server process serves: read from `<modelDir>/ferry-models.json`, each loaded into an
 * onnxruntime session once at start-up (its own session options), with its dynamic-batching settings.
 * Lookups happen on every request, so they are plain map reads.
 *
 *   {"models": [{"name": "mlp", "version": "1", "path": "mlp/model.onnx",
 *                "sessionOptions": {"intraOpNumThreads": 1},                 // optional, onnxruntime's
 *                "batching": {"maxBatchSize": 32, "maxQueueDelayMs": 0}}]}   // optional, see below
 *
 * Batching is off unless an entry asks for it: a dynamic first dimension does not prove that rows are
 * independent (a model over [seq, hidden] mixes its rows), so merging requests must be the model owner's
 * call, as in Triton. `"batching": true` or `{}` takes the defaults, see DEFAULT_BATCHING.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { type V2Datatype, v2DatatypeOf } from './datatypes';
import { ModelNotFoundError } from './errors';

export const MODEL_MANIFEST_FILE = 'ferry-models.json';

export interface ModelManifestEntry {
  name: string;
  version: string;
  /** Relative to the model directory, e.g. `<name>/model.onnx`. */
  path: string;
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Dynamic batching: true / {} for the defaults, an object to set either limit, false or absent for off. */
  batching?: boolean | Partial<BatchingConfig>;
}

export interface BatchingConfig {
  /** Most rows (sum of the merged requests' first dimensions) in one session.run. */
  maxBatchSize: number;
  /**
   * How long the oldest queued request may wait for batch mates while the model is free. 0: run as soon
   * as the model is free, merging only what queued up while it was busy (no delay is ever added).
   */
  maxQueueDelayMs: number;
}

/**
 * Defaults for `"batching": true`. maxQueueDelayMs 0 because onnxruntime-node runs a session on the
 * event loop thread: while one batch computes, the next requests queue up by themselves, so waiting on
 * purpose buys little and costs every request at low load. maxBatchSize 32: past that a MatMul-bound
 * model gains little per row on a few cores, while one batch's latency (and memory) keeps growing.
 */
export const DEFAULT_BATCHING: BatchingConfig = { maxBatchSize: 32, maxQueueDelayMs: 0 };

export interface ModelManifest {
  models: ModelManifestEntry[];
}

/** A model input or output as the protocol describes it; dynamic dimensions are -1. */
export interface TensorSignature {
  name: string;
  /** Undefined when onnxruntime's type has no v2 datatype or the value is not a tensor. */
  datatype: V2Datatype | undefined;
  shape: number[];
  /** False when the model declares no shape at all (then any shape is passed on to onnxruntime). */
  shapeKnown: boolean;
}

export interface LoadedModel {
  name: string;
  version: string;
  session: ort.InferenceSession;
  /** As given in ferry-models.json ({} when none). */
  sessionOptions: ort.InferenceSession.SessionOptions;
  inputs: TensorSignature[];
  inputsByName: Map<string, TensorSignature>;
  outputs: TensorSignature[];
  outputNames: Set<string>;
  /** Set when requests may be merged along the first dimension. */
  batching: BatchingConfig | undefined;
  /** Seconds onnxruntime took to create the session at start-up (a cold start). */
  loadSeconds: number;
}

export class ModelRepository {
  private readonly byName = new Map<string, { latest: LoadedModel; versions: Map<string, LoadedModel> }>();

  constructor(readonly models: LoadedModel[]) {
    for (const model of models) {
      let entry = this.byName.get(model.name);
      if (!entry) {
        entry = { latest: model, versions: new Map() };
        this.byName.set(model.name, entry);
      }
      entry.versions.set(model.version, model);
      if (compareVersions(model.version, entry.latest.version) > 0) entry.latest = model;
    }
  }

  /** The named model at `version`, or its latest version; a ModelNotFoundError names what is missing. */
  resolve(name: string, version: string | undefined): LoadedModel {
    const entry = this.byName.get(name);
    if (!entry) {
      throw new ModelNotFoundError(
        `unknown model "${name}" (this server serves: ${[...this.byName.keys()].join(', ') || 'none'})`,
      );
    }
    if (version === undefined) return entry.latest;
    const model = entry.versions.get(version);
    if (!model) {
      throw new ModelNotFoundError(
        `model "${name}" has no version "${version}" (versions: ${[...entry.versions.keys()].join(', ')})`,
      );
    }
    return model;
  }

  versionsOf(name: string): string[] {
    return [...(this.byName.get(name)?.versions.keys() ?? [])];
  }

  async release(): Promise<void> {
    await Promise.all(this.models.map((m) => m.session.release()));
  }
}

/** Numeric-aware: "10" is newer than "9", "1.10" newer than "1.9". */
function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export async function readModelManifest(modelDir: string): Promise<ModelManifest> {
  const file = path.join(modelDir, MODEL_MANIFEST_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read model manifest ${file}: ${(err as Error).message}`);
  }
  const models = (parsed as { models?: unknown }).models;
  if (!Array.isArray(models) || models.length === 0) {
    throw new Error(`model manifest ${file} must have a non-empty "models" array`);
  }
  const seen = new Set<string>();
  for (const [i, m] of models.entries()) {
    const entry = m as Partial<ModelManifestEntry>;
    for (const key of ['name', 'version', 'path'] as const) {
      if (typeof entry[key] !== 'string' || entry[key] === '') {
        throw new Error(`model manifest ${file}: models[${i}].${key} must be a non-empty string`);
      }
    }
    checkBatchingEntry(file, i, entry.batching);
    if (
      entry.sessionOptions !== undefined &&
      (typeof entry.sessionOptions !== 'object' || entry.sessionOptions === null || Array.isArray(entry.sessionOptions))
    ) {
      throw new Error(`model manifest ${file}: models[${i}].sessionOptions must be an object`);
    }
    const key = `${entry.name}@${entry.version}`;
    if (seen.has(key)) throw new Error(`model manifest ${file}: ${key} is listed twice`);
    seen.add(key);
  }
  return parsed as ModelManifest;
}

function checkBatchingEntry(file: string, i: number, batching: unknown): void {
  if (batching === undefined || typeof batching === 'boolean') return;
  if (typeof batching !== 'object' || batching === null || Array.isArray(batching)) {
    throw new Error(
      `model manifest ${file}: models[${i}].batching must be true, false or {"maxBatchSize": n, "maxQueueDelayMs": ms}`,
    );
  }
  const b = batching as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (key !== 'maxBatchSize' && key !== 'maxQueueDelayMs') {
      throw new Error(
        `model manifest ${file}: models[${i}].batching has unknown key "${key}" (known: maxBatchSize, maxQueueDelayMs)`,
      );
    }
  }
  if (b.maxBatchSize !== undefined && !(Number.isInteger(b.maxBatchSize) && (b.maxBatchSize as number) >= 1)) {
    throw new Error(
      `model manifest ${file}: models[${i}].batching.maxBatchSize must be an integer ≥ 1, got ${JSON.stringify(b.maxBatchSize)}`,
    );
  }
  if (
    b.maxQueueDelayMs !== undefined &&
    !(typeof b.maxQueueDelayMs === 'number' && b.maxQueueDelayMs >= 0 && b.maxQueueDelayMs <= 60_000)
  ) {
    throw new Error(
      `model manifest ${file}: models[${i}].batching.maxQueueDelayMs must be a number of milliseconds in [0, 60000], got ${JSON.stringify(b.maxQueueDelayMs)}`,
    );
  }
}

function batchingConfigOf(entry: ModelManifestEntry): BatchingConfig | undefined {
  if (entry.batching === undefined || entry.batching === false) return undefined;
  if (entry.batching === true) return { ...DEFAULT_BATCHING };
  return { ...DEFAULT_BATCHING, ...entry.batching };
}

/**
 * Why a model cannot be batched along its first dimension, or undefined when it can: every input and
 * every output must have a declared rank ≥ 1 whose first dimension is dynamic. (Whether an output's
 * first dimension really is the batch is checked again on every merged run.)
 */
export function whyNotBatchable(
  inputs: readonly TensorSignature[],
  outputs: readonly TensorSignature[],
): string | undefined {
  for (const [kind, list] of [
    ['input', inputs],
    ['output', outputs],
  ] as const) {
    for (const s of list) {
      if (s.datatype === undefined) return `${kind} "${s.name}" is not a tensor the protocol carries`;
      if (!s.shapeKnown || s.shape.length === 0) return `${kind} "${s.name}" declares no shape with a batch dimension`;
      if (s.shape[0] !== -1)
        return `${kind} "${s.name}" has a fixed first dimension (${s.shape[0]}), not a dynamic batch dimension`;
    }
  }
  return undefined;
}

export async function loadModelRepository(modelDir: string): Promise<ModelRepository> {
  const manifest = await readModelManifest(modelDir);
  const loaded: LoadedModel[] = [];
  try {
    for (const entry of manifest.models) {
      const file = path.resolve(modelDir, entry.path);
      let session: ort.InferenceSession;
      const loadStarted = performance.now();
      try {
        session = await ort.InferenceSession.create(file, entry.sessionOptions ?? {});
      } catch (err) {
        throw new Error(
          `cannot load model "${entry.name}" version "${entry.version}" from ${file}: ${(err as Error).message}`,
        );
      }
      const loadSeconds = (performance.now() - loadStarted) / 1000;
      const inputs = session.inputMetadata.map(signatureOf);
      const outputs = session.outputMetadata.map(signatureOf);
      const batching = batchingConfigOf(entry);
      const notBatchable = batching && whyNotBatchable(inputs, outputs);
      if (notBatchable) {
        await session.release();
        throw new Error(
          `model "${entry.name}" version "${entry.version}" asks for batching, but ${notBatchable}: remove "batching" from its entry in ${MODEL_MANIFEST_FILE}`,
        );
      }
      loaded.push({
        name: entry.name,
        version: entry.version,
        session,
        sessionOptions: entry.sessionOptions ?? {},
        inputs,
        inputsByName: new Map(inputs.map((s) => [s.name, s])),
        outputs,
        outputNames: new Set(outputs.map((s) => s.name)),
        batching,
        loadSeconds,
      });
    }
  } catch (err) {
    await Promise.all(loaded.map((m) => m.session.release()));
    throw err;
  }
  return new ModelRepository(loaded);
}

export function signatureOf(meta: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!meta.isTensor) return { name: meta.name, datatype: undefined, shape: [], shapeKnown: false };
  return {
    name: meta.name,
    datatype: v2DatatypeOf(meta.type),
    // Symbolic (string) and unknown dimensions are both "any size" to a client.
    shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    shapeKnown: meta.shape.length > 0,
  };
}
