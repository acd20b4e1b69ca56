export { startInferenceServer, type InferenceServer, type InferenceServerOptions } from './inferenceServer';
export { DEFAULT_BATCHING, MODEL_MANIFEST_FILE, type BatchingConfig, type ModelManifest, type ModelManifestEntry } from './modelRepository';
export { LATENCY_BUCKETS_SECONDS, type ServerTelemetry } from './inferenceMetrics';
