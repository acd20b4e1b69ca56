/**
 * The inference server without OpenTelemetry: what an edge image's bundle has in place of telemetry.ts
 * (lib/image/runtimeLayer.ts swaps the module at bundle time, so none of the SDK is in that bundle).
 * The server keeps its counters but exports nothing: /metrics answers 404, and no trace or log exporter
 * can be started. The same exports, with the same types, as telemetry.ts.
 */
import { HistogramRegistry, type ServerTelemetry } from './inferenceMetrics';
import type * as WithTelemetry from './telemetry';

function withoutTelemetry(): ServerTelemetry & { shutdown: () => Promise<void> } {
  return { meter: undefined, metricsHandler: undefined, histograms: new HistogramRegistry(), shutdown: async () => {} };
}

export const createStandaloneTelemetry: typeof WithTelemetry.createStandaloneTelemetry = withoutTelemetry;

export const startServerTelemetry: typeof WithTelemetry.startServerTelemetry = () => ({
  ...withoutTelemetry(),
  startDeferred: async () => {},
});
