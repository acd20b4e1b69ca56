/**
 * The kinds of Ferry image. All carry the same runtime layer (node, its C libraries, onnxruntime) and
 * the same model and configuration layers; they differ in the program on top and how it is started.
 *
 *   inference  /app/server.js: the inference server (runtime/server/main.ts) on port 8000, with
 *              OpenTelemetry (Prometheus /metrics; trace/log exporters when asked for)
 *   batch      /app/batch.js: the batch runner (runtime/batch/main.ts). Runs every request file of
 *              FERRY_BATCH_INPUT (default /batch/input) into FERRY_BATCH_OUTPUT (/batch/output), then exits
 *   edge       /app/server.js: the same inference server bundled without OpenTelemetry (no /metrics, no
 *              exporters), on a runtime layer without CA certificates (it makes no TLS connection);
 *              built for arm64 unless other platforms are asked for
 *
 * The image config's KIND_LABEL says which kind an image is.
 */
import type { ImageArchitecture } from './platforms';

export const IMAGE_KINDS = ['inference', 'batch', 'edge'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

/** Image config label naming the kind. */
export const KIND_LABEL = 'ai.ferry.image.kind';

export const BATCH_INPUT_IN_IMAGE = '/batch/input';
export const BATCH_OUTPUT_IN_IMAGE = '/batch/output';

export interface ImageKindSpec {
  kind: ImageKind;
  /** The entry point to bundle, relative to the repository root. */
  entry: string;
  /** Where the bundle goes in the image. */
  programInImage: string;
  /** Whether the bundle carries OpenTelemetry (else runtime/server/noTelemetry.ts stands in). */
  telemetry: boolean;
  /** Whether the runtime layer carries the CA certificates (a program that makes TLS connections). */
  caCertificates: boolean;
  /** The image's environment besides PATH and FERRY_MODEL_DIR. */
  env: string[];
  /** Ports the program listens on. */
  exposedPorts: string[];
  /** Platforms built when none are asked for; undefined: the container stage's (amd64 and arm64). */
  defaultArchitectures?: readonly ImageArchitecture[];
}

export const SERVER_PORT = 8000;
const SERVER_ENV = [`PORT=${SERVER_PORT}`, 'HOST=0.0.0.0'];

const KINDS: Record<ImageKind, ImageKindSpec> = {
  inference: {
    kind: 'inference',
    entry: 'runtime/server/main.ts',
    programInImage: '/app/server.js',
    telemetry: true,
    caCertificates: true,
    env: SERVER_ENV,
    exposedPorts: [`${SERVER_PORT}/tcp`],
  },
  batch: {
    kind: 'batch',
    entry: 'runtime/batch/main.ts',
    programInImage: '/app/batch.js',
    // The batch runner loads no telemetry; it reads and writes s3:// locations over TLS.
    telemetry: false,
    caCertificates: true,
    env: [`FERRY_BATCH_INPUT=${BATCH_INPUT_IN_IMAGE}`, `FERRY_BATCH_OUTPUT=${BATCH_OUTPUT_IN_IMAGE}`],
    exposedPorts: [],
  },
  edge: {
    kind: 'edge',
    entry: 'runtime/server/main.ts',
    programInImage: '/app/server.js',
    telemetry: false,
    caCertificates: false,
    env: SERVER_ENV,
    exposedPorts: [`${SERVER_PORT}/tcp`],
    defaultArchitectures: ['arm64'],
  },
};

export function imageKind(kind: ImageKind = 'inference'): ImageKindSpec {
  const spec = KINDS[kind];
  if (!spec) throw new Error(`unknown image kind "${kind as string}" (${IMAGE_KINDS.join(', ')})`);
  return spec;
}
