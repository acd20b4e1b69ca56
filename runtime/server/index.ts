export { LATENCY_BUCKETS_SECONDS, type ServerTelemetry } from './inferenceMetrics';
export { type InferenceServer, type InferenceServerOptions, startInferenceServer } from './inferenceServer';
export {
  type BatchingConfig,
  DEFAULT_BATCHING,
  MODEL_MANIFEST_FILE,
  type ModelManifest,
  type ModelManifestEntry,
} from './modelRepository';
