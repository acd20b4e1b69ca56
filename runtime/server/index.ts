export { startInferenceServer, type InferenceServer, type InferenceServerOptions } from './inferenceServer';
export { MODEL_MANIFEST_FILE, type ModelManifest, type ModelManifestEntry } from './modelRepository';
export { LATENCY_BUCKETS_SECONDS, type ServerTelemetry } from './inferenceMetrics';
