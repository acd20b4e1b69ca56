/**
 * Model images: the shared runtime layer, then the model(s).
 *
 *   one model:   [runtime] [ /models/ferry-models.json + /models/<name>/model.onnx ]
 *   several:     [runtime] [ /models/<a>/model.onnx ] [ /models/<b>/model.onnx ] … [ /models/ferry-models.json ]
 *
 * With several models each gets its own layer and the index comes last, so a new version of one
 * model re-pushes only that model's layer and the tiny index — never its neighbours' weights.
 */
import * as path from 'node:path';
import { loadConfig } from '../config';
import { assembleImage, type BuiltImage, canonicalJson } from '../oci/image';
import { type LayerBlob, type LayerFile, layerFromFiles } from '../oci/layer';
import { pushImage } from '../oci/push';
import { buildRuntimeLayer, type RuntimeLayerOptions } from './runtimeLayer';

export type { BuiltImage } from '../oci/image';
export type { PushedImage } from '../oci/push';
export { pushImage };

export const MODEL_DIR_IN_IMAGE = '/models';
export const SERVER_PORT = 8000;
const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface ImageModel {
  /** Also the directory name in the image, so path-safe: [A-Za-z0-9._-], not starting with '.' or '-'. */
  name: string;
  version: string;
  onnxPath: string;
  sessionOptions?: Record<string, unknown>;
  /** The server's dynamic batching for this model (runtime/server/modelRepository.ts); absent = off. */
  batching?: { maxBatchSize: number; maxQueueDelayMs: number };
}

export interface BuildModelImageOptions {
  models: ImageModel[];
  labels?: Record<string, string>;
  /** Where to build the runtime layer from; defaults suit the repository checkout. */
  runtime?: RuntimeLayerOptions;
  /** Where model layer blobs are written; default `<cacheDir>/blobs`. */
  blobDir?: string;
}

/** The `/models/ferry-models.json` the inference server reads. */
export function modelIndexJson(models: readonly ImageModel[]): string {
  const index = {
    models: models.map((m) => ({
      name: m.name,
      version: m.version,
      path: `${m.name}/model.onnx`,
      ...(m.sessionOptions ? { sessionOptions: m.sessionOptions } : {}),
      ...(m.batching ? { batching: m.batching } : {}),
    })),
  };
  // Sorted keys, so the same settings written in another key order give the same layer.
  return `${JSON.stringify(JSON.parse(canonicalJson(index)), null, 2)}\n`;
}

function checkModels(models: readonly ImageModel[]): void {
  if (models.length === 0) throw new Error('an image needs at least one model');
  const seen = new Set<string>();
  for (const m of models) {
    if (!MODEL_NAME_PATTERN.test(m.name)) {
      throw new Error(
        `model name "${m.name}" cannot be a directory in the image: use letters, digits, ".", "_" or "-"`,
      );
    }
    if (seen.has(m.name)) throw new Error(`model "${m.name}" is listed twice in one image`);
    if (m.version.trim() === '') throw new Error(`model "${m.name}" has an empty version`);
    seen.add(m.name);
  }
}

export async function buildModelImage(opts: BuildModelImageOptions): Promise<BuiltImage> {
  checkModels(opts.models);
  const blobDir = opts.blobDir ?? path.join(loadConfig().cacheDir, 'blobs');
  const runtime = await buildRuntimeLayer(opts.runtime);
  const { cacheKey: _key, fromCache: _cached, buildMs: _ms, ...runtimeLayer } = runtime;

  const modelFile = (m: ImageModel): LayerFile => ({
    path: `${MODEL_DIR_IN_IMAGE}/${m.name}/model.onnx`,
    sourcePath: m.onnxPath,
  });
  const indexFile: LayerFile = {
    path: `${MODEL_DIR_IN_IMAGE}/ferry-models.json`,
    bytes: Buffer.from(modelIndexJson(opts.models)),
  };
  const modelLayers: LayerBlob[] = [];
  if (opts.models.length === 1) {
    modelLayers.push(await layerFromFiles([indexFile, modelFile(opts.models[0]!)], blobDir));
  } else {
    for (const m of opts.models) modelLayers.push(await layerFromFiles([modelFile(m)], blobDir));
    modelLayers.push(await layerFromFiles([indexFile], blobDir));
  }

  const title = opts.models.map((m) => m.name).join(', ');
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': title,
    ...(opts.models.length === 1 ? { 'org.opencontainers.image.version': opts.models[0]!.version } : {}),
    ...opts.labels,
    // Last, so a caller's label cannot misstate what the image serves.
    'ai.ferry.models': opts.models.map((m) => `${m.name}:${m.version}`).join(','),
  };
  return assembleImage(
    [runtimeLayer, ...modelLayers],
    {
      entrypoint: ['node', '/app/server.js'],
      env: [`FERRY_MODEL_DIR=${MODEL_DIR_IN_IMAGE}`, `PORT=${SERVER_PORT}`],
      workingDir: '/app',
      exposedPorts: [`${SERVER_PORT}/tcp`],
      labels,
    },
    { 'org.opencontainers.image.title': labels['org.opencontainers.image.title']! },
  );
}
