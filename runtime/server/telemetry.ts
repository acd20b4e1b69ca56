/**
 * The inference server's OpenTelemetry: the only module of runtime/server that loads the SDK, so a
 * bundle built without telemetry (an edge image's: lib/image/runtimeLayer.ts puts noTelemetry.ts in
 * its place) carries none of it.
 *
 * For a server process (startServerTelemetry): a MeterProvider with a Prometheus exporter as its reader, with
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
import { metrics, ValueType } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import {
  detectResourcesSync,
  envDetectorSync,
  hostDetectorSync,
  processDetectorSync,
  Resource,
} from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type HistogramMetricData,
  InstrumentType,
  MeterProvider,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { HistogramRegistry, type ServerTelemetry } from './inferenceMetrics';
import { defaultOtelExportersToNone, otelTracesOrLogsWanted, withOtelMetricsExporterOff } from './settings';

/** Hands the server's histograms to the exporter at each scrape, as OpenTelemetry histogram data. */
class HistogramProducer implements MetricProducer {
  private readonly startTime = hrTime();

  constructor(private readonly registry: HistogramRegistry) {}

  async collect(): Promise<CollectionResult> {
    const endTime = hrTime();
    const metrics: HistogramMetricData[] = this.registry.families.map((f) => ({
      descriptor: {
        name: f.name,
        description: f.description,
        unit: f.unit,
        type: InstrumentType.HISTOGRAM,
        valueType: ValueType.DOUBLE,
        advice: {},
      },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      // Like the SDK's own histograms: a series appears once it has an observation.
      dataPoints: f.series
        .filter((s) => s.histogram.count > 0)
        .map(({ attributes, histogram: h }) => ({
          attributes,
          startTime: this.startTime,
          endTime,
          value: {
            buckets: { boundaries: [...f.boundaries], counts: Array.from(h.counts) },
            sum: h.sum,
            count: h.count,
            ...(h.count ? { min: h.min, max: h.max } : {}),
          },
        })),
    }));
    return {
      resourceMetrics: {
        resource: Resource.empty(),
        scopeMetrics: [{ scope: { name: 'ferry-inference-server' }, metrics }],
      },
      errors: [],
    };
  }
}

/** A Prometheus exporter (no port of its own) that also exports the server's histograms. */
function createPrometheusExporter(): { prometheus: PrometheusExporter; histograms: HistogramRegistry } {
  const histograms = new HistogramRegistry();
  return {
    prometheus: new PrometheusExporter({
      preventServerStart: true,
      metricProducers: [new HistogramProducer(histograms)],
    }),
    histograms,
  };
}

const metricsHandlerOf = (prometheus: PrometheusExporter): ServerTelemetry['metricsHandler'] =>
  prometheus.getMetricsRequestHandler.bind(prometheus);

/** A private provider + exporter, for servers started in-process (tests, `ferry serve`). */
export function createStandaloneTelemetry(): ServerTelemetry {
  const { prometheus, histograms } = createPrometheusExporter();
  const provider = new MeterProvider({ readers: [prometheus] });
  return {
    meter: provider.getMeter('ferry-inference-server'),
    metricsHandler: metricsHandlerOf(prometheus),
    histograms,
    shutdown: () => provider.shutdown(),
  };
}

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
    metricsHandler: metricsHandlerOf(prometheus),
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
