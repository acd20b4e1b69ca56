/**
 * The server's Prometheus metrics, produced through OpenTelemetry. Labels: model, version.
 *   ferry_inference_requests_total                 counter    infer requests received
 *   ferry_inference_errors_total{code}             counter    infer requests answered with an error, by HTTP status
 *   ferry_inference_request_duration_seconds       histogram  request received → response written
 *   ferry_inference_queue_duration_seconds         histogram  request decoded → its session.run started
 *   ferry_inference_compute_duration_seconds       histogram  its session.run (the merged run, when batched)
 *   ferry_inference_batch_size                     histogram  rows per session.run
 *   ferry_inference_executions_total               counter    session.run calls (requests / executions = merge ratio)
 *   ferry_inference_in_flight                      gauge      infer requests received and not yet answered
 *   ferry_inference_cold_starts_total              counter    model loads at process start
 *   ferry_inference_cold_start_duration_seconds    histogram  how long each of those loads took
 * Counters and the gauge are plain numbers read by observable instruments at scrape time, so a request
 * pays for property increments plus its histogram records.
 */
import type { Attributes, Histogram, Meter, ObservableResult } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** Seconds; from 0.1 ms (a small model's run) to 10 s (a large batch on a busy CPU). */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Queue waits are often far below a run's time: finer at the low end. */
export const QUEUE_BUCKETS_SECONDS = [0.00001, 0.000025, 0.00005, ...LATENCY_BUCKETS_SECONDS];

/** Rows per session.run: powers of two up to well past any sensible maxBatchSize. */
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Model loads: from a tiny model (10 ms) to a large one on a slow disk (2 min). */
export const COLD_START_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

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
  executions = 0;
  inFlight = 0;
  coldStarts = 0;
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
  private readonly duration: Histogram;
  private readonly queueDuration: Histogram;
  private readonly computeDuration: Histogram;
  private readonly batchSize: Histogram;
  private readonly coldStartDuration: Histogram;

  constructor(meter: Meter) {
    // `servedOnly`: leave out the counters of requests for unknown models (model="").
    const observeEach = (read: (c: ModelCounters) => number, servedOnly = false) => (result: ObservableResult) => {
      for (const c of this.counters) {
        if (!(servedOnly && c.attributes.model === '')) result.observe(read(c), c.attributes);
      }
    };
    meter
      .createObservableCounter('ferry_inference_requests_total', { description: 'Inference requests received, per model version' })
      .addCallback(observeEach((c) => c.requests));
    meter
      .createObservableCounter('ferry_inference_errors_total', { description: 'Inference requests answered with an error, by HTTP status code' })
      .addCallback((result: ObservableResult) => {
        for (const c of this.counters) {
          for (const [code, n] of c.errorsByCode) result.observe(n, { ...c.attributes, code: String(code) });
        }
      });
    meter
      .createObservableCounter('ferry_inference_executions_total', { description: 'session.run calls; several requests share one when batched' })
      .addCallback(observeEach((c) => c.executions, true));
    meter
      .createObservableGauge('ferry_inference_in_flight', { description: 'Inference requests received and not yet answered' })
      .addCallback(observeEach((c) => c.inFlight, true));
    meter
      .createObservableCounter('ferry_inference_cold_starts_total', { description: 'Model loads at process start (a cold start of this model version)' })
      .addCallback(observeEach((c) => c.coldStarts, true));

    this.duration = meter.createHistogram('ferry_inference_request_duration_seconds', {
      description: 'Time from request received to response written, per model version',
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_SECONDS },
    });
    this.queueDuration = meter.createHistogram('ferry_inference_queue_duration_seconds', {
      description: "Time from a request's tensors decoded to its session.run starting (waiting for the model or for batch mates)",
      unit: 's',
      advice: { explicitBucketBoundaries: QUEUE_BUCKETS_SECONDS },
    });
    this.computeDuration = meter.createHistogram('ferry_inference_compute_duration_seconds', {
      description: "Time of the session.run that computed a request's outputs (the merged run when batched)",
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_SECONDS },
    });
    this.batchSize = meter.createHistogram('ferry_inference_batch_size', {
      description: 'Rows (first-dimension entries, summed over merged requests) per session.run',
      advice: { explicitBucketBoundaries: BATCH_SIZE_BUCKETS },
    });
    this.coldStartDuration = meter.createHistogram('ferry_inference_cold_start_duration_seconds', {
      description: 'Time to load a model into onnxruntime at process start',
      unit: 's',
      advice: { explicitBucketBoundaries: COLD_START_BUCKETS_SECONDS },
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

  recordQueueAndCompute(counters: ModelCounters, queueSeconds: number, computeSeconds: number): void {
    this.queueDuration.record(queueSeconds, counters.attributes);
    this.computeDuration.record(computeSeconds, counters.attributes);
  }

  recordRun(counters: ModelCounters, rows: number): void {
    counters.executions++;
    this.batchSize.record(rows, counters.attributes);
  }

  recordColdStart(counters: ModelCounters, seconds: number): void {
    counters.coldStarts++;
    this.coldStartDuration.record(seconds, counters.attributes);
  }
}
