/**
 * OpenTelemetry for a server process: the Node SDK with a Prometheus exporter as its metric reader.
 * The exporter never opens its own port; the inference server mounts its handler at /metrics.
 * Trace, log and extra metric exporters stay off unless configured through the standard OTEL_* vars.
 */
import { metrics } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { createPrometheusExporter, type ServerTelemetry } from './inferenceMetrics';

export function startServerTelemetry(serviceName = 'ferry-inference-server'): ServerTelemetry {
  // The SDK defaults each of these to OTLP, which would retry against a collector that is not there.
  for (const name of ['OTEL_TRACES_EXPORTER', 'OTEL_LOGS_EXPORTER', 'OTEL_METRICS_EXPORTER']) {
    process.env[name] ??= 'none';
  }
  const { prometheus, histograms } = createPrometheusExporter();
  const sdk = new NodeSDK({ serviceName, metricReader: prometheus });
  sdk.start();
  return { meter: metrics.getMeter(serviceName), prometheus, histograms, shutdown: () => sdk.shutdown() };
}
