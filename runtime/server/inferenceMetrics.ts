/**
 * The server's Prometheus metrics, produced through OpenTelemetry:
 *   ferry_inference_requests_total{model,version}
 *   ferry_inference_errors_total{model,version,code}
 *   ferry_inference_request_duration_seconds{model,version} (histogram)
 * Counters are plain numbers read by observable instruments at scrape time, so a request only pays
 * for a property increment plus one histogram record.
 */
import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** Seconds; from 0.1 ms (a small model's run) to 10 s (a large batch on a busy CPU). */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Where metrics go: a Meter whose provider has `prometheus` as a reader. */
export interface ServerTelemetry {
  meter: Meter;
  prometheus: PrometheusExporter;
  /** Set when the telemetry was created for this server alone and must be shut down with it. */
  shutdown?: () => Promise<void>;
}

/** A private provider + exporter, for servers started in-process (tests, `ferry serve`). */
export function createStandaloneTelemetry(): ServerTelemetry {
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [prometheus] });
  return { meter: provider.getMeter('ferry-inference-server'), prometheus, shutdown: () => provider.shutdown() };
}

/** Per model-version counters; held by the request handler so the hot path does no lookups. */
export class ModelCounters {
  requests = 0;
  readonly errorsByCode = new Map<number, number>();
  readonly attributes: Attributes;

  constructor(model: string, version: string) {
    this.attributes = { model, version };
  }

  countError(code: number): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

export class InferenceMetrics {
  private readonly counters: ModelCounters[] = [];
  private readonly duration;

  constructor(meter: Meter) {
    meter
      .createObservableCounter('ferry_inference_requests_total', {
        description: 'Inference requests received, per model version',
      })
      .addCallback((result: ObservableResult) => {
        for (const c of this.counters) result.observe(c.requests, c.attributes);
      });
    meter
      .createObservableCounter('ferry_inference_errors_total', {
        description: 'Inference requests answered with an error, by HTTP status code',
      })
      .addCallback((result: ObservableResult) => {
        for (const c of this.counters) {
          for (const [code, n] of c.errorsByCode) result.observe(n, { ...c.attributes, code: String(code) });
        }
      });
    this.duration = meter.createHistogram('ferry_inference_request_duration_seconds', {
      description: 'Time from request received to response written, per model version',
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_SECONDS },
    });
  }

  countersFor(model: string, version: string): ModelCounters {
    let c = this.counters.find((x) => x.attributes.model === model && x.attributes.version === version);
    if (!c) {
      c = new ModelCounters(model, version);
      this.counters.push(c);
    }
    return c;
  }

  recordDuration(counters: ModelCounters, seconds: number): void {
    this.duration.record(seconds, counters.attributes);
  }
}
