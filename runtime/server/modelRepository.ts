/**
 * The models one server process serves: read from `<modelDir>/ferry-models.json`, each loaded into an
 * onnxruntime session once at start-up. Lookups happen on every request, so they are plain map reads.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { v2DatatypeOf, type V2Datatype } from './datatypes';
import { RequestError } from './requestError';

export const MODEL_MANIFEST_FILE = 'ferry-models.json';

export interface ModelManifestEntry {
  name: string;
  version: string;
  /** Relative to the model directory, e.g. `<name>/model.onnx`. */
  path: string;
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

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
  inputs: TensorSignature[];
  inputsByName: Map<string, TensorSignature>;
  outputs: TensorSignature[];
  outputNames: Set<string>;
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

  /** The named model at `version`, or its latest version; a RequestError(404) names what is missing. */
  resolve(name: string, version: string | undefined): LoadedModel {
    const entry = this.byName.get(name);
    if (!entry) {
      throw new RequestError(404, `unknown model "${name}" (this server serves: ${[...this.byName.keys()].join(', ') || 'none'})`);
    }
    if (version === undefined) return entry.latest;
    const model = entry.versions.get(version);
    if (!model) {
      throw new RequestError(404, `model "${name}" has no version "${version}" (versions: ${[...entry.versions.keys()].join(', ')})`);
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
    const key = `${entry.name}@${entry.version}`;
    if (seen.has(key)) throw new Error(`model manifest ${file}: ${key} is listed twice`);
    seen.add(key);
  }
  return parsed as ModelManifest;
}

export async function loadModelRepository(modelDir: string): Promise<ModelRepository> {
  const manifest = await readModelManifest(modelDir);
  const loaded: LoadedModel[] = [];
  try {
    for (const entry of manifest.models) {
      const file = path.resolve(modelDir, entry.path);
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(file, entry.sessionOptions ?? {});
      } catch (err) {
        throw new Error(`cannot load model "${entry.name}" version "${entry.version}" from ${file}: ${(err as Error).message}`);
      }
      const inputs = session.inputMetadata.map(signatureOf);
      const outputs = session.outputMetadata.map(signatureOf);
      loaded.push({
        name: entry.name,
        version: entry.version,
        session,
        inputs,
        inputsByName: new Map(inputs.map((s) => [s.name, s])),
        outputs,
        outputNames: new Set(outputs.map((s) => s.name)),
      });
    }
  } catch (err) {
    await Promise.all(loaded.map((m) => m.session.release()));
    throw err;
  }
  return new ModelRepository(loaded);
}

function signatureOf(meta: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!meta.isTensor) return { name: meta.name, datatype: undefined, shape: [], shapeKnown: false };
  return {
    name: meta.name,
    datatype: v2DatatypeOf(meta.type),
    // Symbolic (string) and unknown dimensions are both "any size" to a client.
    shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    shapeKnown: meta.shape.length > 0,
  };
}
