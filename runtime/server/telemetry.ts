/**
 * OpenTelemetry for a server process: a MeterProvider with a Prometheus exporter as its reader, with
 * the resource the Node SDK would give it (service.name, env, process and host attributes; the
 * registered global provider, as the SDK does). The exporter never opens its own port; the inference
 * server mounts its handler at /metrics.
 *
 * The Node SDK itself (@opentelemetry/sdk-node and the trace/log exporters it loads: ~30–60 ms of
 * module loading, a fifth of a cold start) is not needed for metrics, so it is not loaded before the
 * server is ready: `startDeferred()` (main.ts calls it once the models are loaded) starts it only when
 * trace or log exporters are asked for through the standard OTEL_TRACES_EXPORTER / OTEL_LOGS_EXPORTER
 * variables (off by default). Metrics, cold-start ones included, work from the first moment.
 */
import { metrics } from '@opentelemetry/api';
import {
  detectResourcesSync,
  envDetectorSync,
  hostDetectorSync,
  processDetectorSync,
  Resource,
} from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createPrometheusExporter, type ServerTelemetry } from './inferenceMetrics';
import { defaultOtelExportersToNone, otelTracesOrLogsWanted, withOtelMetricsExporterOff } from './settings';

export interface ServerProcessTelemetry extends ServerTelemetry {
  shutdown: () => Promise<void>;
  /** Starts the Node SDK for trace/log exporters, when any is configured; call once the server is ready. */
  startDeferred(): Promise<void>;
}

export function startServerTelemetry(serviceName = 'ferry-inference-server'): ServerProcessTelemetry {
  defaultOtelExportersToNone();
  const { prometheus, histograms } = createPrometheusExporter();
  const resource = detectResourcesSync({ detectors: [envDetectorSync, processDetectorSync, hostDetectorSync] }).merge(
    new Resource({ 'service.name': serviceName }),
  );
  const provider = new MeterProvider({ resource, readers: [prometheus] });
  metrics.setGlobalMeterProvider(provider);
  let sdk: { shutdown(): Promise<void> } | undefined;
  let deferred: Promise<void> | undefined;
  return {
    meter: provider.getMeter(serviceName),
    prometheus,
    histograms,
    startDeferred() {
      deferred ??= (async () => {
        if (!otelTracesOrLogsWanted()) return;
        const { NodeSDK } = await import('@opentelemetry/sdk-node');
        // Metrics stay with the provider above: OTEL_METRICS_EXPORTER is not read (as when the SDK was
        // given the Prometheus reader), so the SDK makes no second, empty meter provider.
        sdk = withOtelMetricsExporterOff(() => {
          const started = new NodeSDK({ serviceName, resource });
          started.start();
          return started;
        });
      })();
      return deferred;
    },
    async shutdown() {
      await deferred?.catch(() => undefined);
      await Promise.all([provider.shutdown(), sdk?.shutdown()]);
    },
  };
}
