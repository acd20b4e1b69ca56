/**
 * Model images, layered for caching, bottom first:
 *
 *   [runtime <arch>]  node, its C libraries, onnxruntime, /etc, /tmp  (runtimeLayer.ts; per architecture)
 *   [server]          /app/server.js                                  (changes with runtime/server)
 *   [model] …         /models/<name>/model.onnx, one layer per model
 *   [configuration]   /models/ferry-models.json: versions, session options, batching (a few hundred bytes)
 *
 * So a new version of a model moves only its own layer and the configuration layer, and a new setting
 * only the configuration layer. The image runs as the non-root user 65532 with the image's own node:
 * Entrypoint ["/usr/bin/node", "/app/server.js"]. A multi-platform build is an OCI image index over one
 * such image per architecture; the model, server and configuration layers are the same blobs in each.
 *
 * Each layer's descriptor in the manifest says what it holds (LAYER_ROLE_ANNOTATION, and for a model
 * layer the model's name and version), so `ferry image inspect` can tell without downloading layers.
 *
 * `kind` (imageKinds.ts) picks the program on top: the inference server (default), the batch runner
 * (Entrypoint /app/batch.js), or the edge server (no OpenTelemetry, no CA certificates, arm64 unless
 * asked otherwise); the image config's `ai.ferry.image.kind` label says which.
 */
import * as path from 'node:path';
import { loadConfig } from '../config';
import { assembleImage, assembleIndex, type BuiltImage, type BuiltImageIndex, canonicalJson } from '../oci/image';
import { type LayerBlob, type LayerFile, layerFromFiles } from '../oci/layer';
import { pushImage } from '../oci/push';
import { type ImageKind, type ImageKindSpec, imageKind, KIND_LABEL, SERVER_PORT } from './imageKinds';
import { IMAGE_ARCHITECTURES, type ImageArchitecture } from './platforms';
import { buildRuntimeLayer, buildServerLayer, NODE_IN_IMAGE, type RuntimeLayerOptions } from './runtimeLayer';
import { IMAGE_USER_SPEC } from './systemFiles';

export type { BuiltImage, BuiltImageIndex } from '../oci/image';
export type { PushedImage } from '../oci/push';
export type { ImageKind } from './imageKinds';
export type { ImageArchitecture } from './platforms';
export { IMAGE_ARCHITECTURES, KIND_LABEL, pushImage, SERVER_PORT };

export const MODEL_DIR_IN_IMAGE = '/models';
/** Layer descriptor annotation: runtime, server, model or configuration. */
export const LAYER_ROLE_ANNOTATION = 'ai.ferry.layer';
export const LAYER_MODEL_NAME_ANNOTATION = 'ai.ferry.model.name';
export const LAYER_MODEL_VERSION_ANNOTATION = 'ai.ferry.model.version';
/** Image config label listing the models an image serves: `name:version,...`. */
export const MODELS_LABEL = 'ai.ferry.models';
export type LayerRole = 'runtime' | 'server' | 'model' | 'configuration';

function withRole(layer: LayerBlob, role: LayerRole, extra: Record<string, string> = {}): LayerBlob {
  return { ...layer, annotations: { [LAYER_ROLE_ANNOTATION]: role, ...extra } };
}
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
  /** Where to build the runtime and server layers from; defaults suit the repository checkout. */
  runtime?: RuntimeLayerOptions;
  /** Where model and configuration layer blobs are written; default `<cacheDir>/blobs`. */
  blobDir?: string;
  /** Default inference. */
  kind?: ImageKind;
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

/** The layers above the runtime: the same for every architecture. */
interface SharedLayers {
  server: LayerBlob;
  models: LayerBlob[];
  configuration: LayerBlob;
  labels: Record<string, string>;
  title: string;
  kind: ImageKindSpec;
}

async function buildSharedLayers(opts: BuildModelImageOptions): Promise<SharedLayers> {
  checkModels(opts.models);
  const blobDir = opts.blobDir ?? path.join(loadConfig().cacheDir, 'blobs');
  const kind = imageKind(opts.kind);
  const server = withRole(await buildServerLayer({ ...opts.runtime, kind: kind.kind }), 'server');
  const models: LayerBlob[] = [];
  for (const m of opts.models) {
    const file: LayerFile = { path: `${MODEL_DIR_IN_IMAGE}/${m.name}/model.onnx`, sourcePath: m.onnxPath };
    models.push(
      withRole(await layerFromFiles([file], blobDir), 'model', {
        [LAYER_MODEL_NAME_ANNOTATION]: m.name,
        [LAYER_MODEL_VERSION_ANNOTATION]: m.version,
      }),
    );
  }
  const configuration = withRole(
    await layerFromFiles(
      [{ path: `${MODEL_DIR_IN_IMAGE}/ferry-models.json`, bytes: Buffer.from(modelIndexJson(opts.models)) }],
      blobDir,
    ),
    'configuration',
  );
  const title = opts.models.map((m) => m.name).join(', ');
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': title,
    ...(opts.models.length === 1 ? { 'org.opencontainers.image.version': opts.models[0]!.version } : {}),
    ...opts.labels,
    // Last, so a caller's label cannot misstate what the image serves.
    [MODELS_LABEL]: opts.models.map((m) => `${m.name}:${m.version}`).join(','),
    [KIND_LABEL]: kind.kind,
  };
  return { server, models, configuration, labels, title, kind };
}

async function imageFor(
  architecture: ImageArchitecture,
  shared: SharedLayers,
  runtime: RuntimeLayerOptions | undefined,
): Promise<BuiltImage> {
  const {
    cacheKey: _key,
    fromCache: _cached,
    buildMs: _ms,
    libraries: _libs,
    architecture: _arch,
    ...runtimeLayer
  } = await buildRuntimeLayer({ ...runtime, architecture, caCertificates: shared.kind.caCertificates });
  return assembleImage(
    [withRole(runtimeLayer, 'runtime'), shared.server, ...shared.models, shared.configuration],
    {
      entrypoint: [NODE_IN_IMAGE, shared.kind.programInImage],
      env: ['PATH=/usr/bin:/bin', `FERRY_MODEL_DIR=${MODEL_DIR_IN_IMAGE}`, ...shared.kind.env],
      workingDir: '/app',
      user: IMAGE_USER_SPEC,
      exposedPorts: shared.kind.exposedPorts,
      labels: shared.labels,
      architecture,
      os: 'linux',
    },
    { 'org.opencontainers.image.title': shared.title },
  );
}

/** A single-platform image (default linux/amd64; an edge image linux/arm64). */
export async function buildModelImage(
  opts: BuildModelImageOptions & { architecture?: ImageArchitecture },
): Promise<BuiltImage> {
  const architecture = opts.architecture ?? imageKind(opts.kind).defaultArchitectures?.[0] ?? 'amd64';
  return imageFor(architecture, await buildSharedLayers(opts), opts.runtime);
}

/**
 * A multi-platform image: an OCI index over one image per architecture (default amd64 and arm64, and
 * for an edge image arm64 alone).
 */
export async function buildModelImageIndex(
  opts: BuildModelImageOptions & { architectures?: readonly ImageArchitecture[] },
): Promise<BuiltImageIndex> {
  const architectures = opts.architectures ?? imageKind(opts.kind).defaultArchitectures ?? IMAGE_ARCHITECTURES;
  if (architectures.length === 0) throw new Error('an image index needs at least one architecture');
  const shared = await buildSharedLayers(opts);
  const images: BuiltImage[] = [];
  for (const architecture of architectures) images.push(await imageFor(architecture, shared, opts.runtime));
  return assembleIndex(images, { 'org.opencontainers.image.title': shared.title });
}
