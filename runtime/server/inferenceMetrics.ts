/**
 * The server's Prometheus metrics, exported through OpenTelemetry (telemetry.ts) when the bundle has it
 * (an edge image's has not: noTelemetry.ts). This module itself loads no OpenTelemetry code. Labels: model, version.
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
 * Counters and the gauge are plain numbers read by observable instruments at scrape time. The
 * per-request histograms are aggregated here (a bucket increment, ~20 ns) and handed to the OpenTelemetry
 * Prometheus exporter as a MetricProducer at scrape time: the SDK's own sync histograms hash the
 * attribute set on every record, which cost several µs per request — a measurable share of a small
 * model's whole request (bench/serving-overhead.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';

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

/**
 * Where metrics go. With OpenTelemetry (telemetry.ts): a Meter whose provider has a Prometheus exporter
 * as its reader, which also reads `histograms`, served at /metrics by `metricsHandler`. Without it (an
 * edge image's bundle, noTelemetry.ts): no meter and no handler; the counters are kept but not exported.
 */
export interface ServerTelemetry {
  meter: Meter | undefined;
  histograms: HistogramRegistry;
  /** Answers GET /metrics (Prometheus text); absent when the server is built without metrics. */
  metricsHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  /** Set when the telemetry was created for this server alone and must be shut down with it. */
  shutdown?: () => Promise<void>;
}

/** Cumulative explicit-bucket histogram of one series: counts per bucket (last one is +Inf), sum, count. */
export class BucketHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;

  constructor(readonly boundaries: readonly number[]) {
    this.counts = new Float64Array(boundaries.length + 1);
  }

  record(value: number): void {
    const b = this.boundaries;
    let i = 0;
    while (i < b.length && value > b[i]) i++; // bucket i holds (b[i-1], b[i]], as Prometheus's le
    this.counts[i]++;
    this.sum += value;
    this.count++;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }
}

export interface HistogramFamily {
  name: string;
  description: string;
  unit: string;
  boundaries: readonly number[];
  series: Array<{ attributes: Attributes; histogram: BucketHistogram }>;
}

/** The server's histogram families and their series; telemetry.ts hands them to the exporter at each scrape. */
export class HistogramRegistry {
  readonly families: HistogramFamily[] = [];

  family(name: string, description: string, unit: string, boundaries: readonly number[]): HistogramFamily {
    const family = { name, description, unit, boundaries, series: [] };
    this.families.push(family);
    return family;
  }

  series(family: HistogramFamily, attributes: Attributes): BucketHistogram {
    const histogram = new BucketHistogram(family.boundaries);
    family.series.push({ attributes, histogram });
    return histogram;
  }
}

/** Per model-version counters and histograms; held by the request handler so the hot path does no lookups. */
export class ModelCounters {
  requests = 0;
  executions = 0;
  inFlight = 0;
  coldStarts = 0;
  readonly errorsByCode = new Map<number, number>();
  readonly attributes: Attributes;
  readonly duration: BucketHistogram;
  readonly queueDuration: BucketHistogram;
  readonly computeDuration: BucketHistogram;
  readonly batchSize: BucketHistogram;
  readonly coldStartDuration: BucketHistogram;

  constructor(model: string, version: string, histograms: InferenceHistograms) {
    this.attributes = { model, version };
    this.duration = histograms.producer.series(histograms.duration, this.attributes);
    this.queueDuration = histograms.producer.series(histograms.queueDuration, this.attributes);
    this.computeDuration = histograms.producer.series(histograms.computeDuration, this.attributes);
    this.batchSize = histograms.producer.series(histograms.batchSize, this.attributes);
    this.coldStartDuration = histograms.producer.series(histograms.coldStartDuration, this.attributes);
  }

  countError(code: number): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

interface InferenceHistograms {
  producer: HistogramRegistry;
  duration: HistogramFamily;
  queueDuration: HistogramFamily;
  computeDuration: HistogramFamily;
  batchSize: HistogramFamily;
  coldStartDuration: HistogramFamily;
}

export class InferenceMetrics {
  private readonly counters: ModelCounters[] = [];
  private readonly histograms: InferenceHistograms;

  constructor(telemetry: Pick<ServerTelemetry, 'meter' | 'histograms'>) {
    // Without a meter (no OpenTelemetry in this bundle) the counters are still kept, just not exported.
    if (telemetry.meter) this.observeCounters(telemetry.meter);
    const producer = telemetry.histograms;
    this.histograms = {
      producer,
      duration: producer.family(
        'ferry_inference_request_duration_seconds',
        'Time from request received to response written, per model version',
        's',
        LATENCY_BUCKETS_SECONDS,
      ),
      queueDuration: producer.family(
        'ferry_inference_queue_duration_seconds',
        "Time from a request's tensors decoded to its session.run starting (waiting for the model or for batch mates)",
        's',
        QUEUE_BUCKETS_SECONDS,
      ),
      computeDuration: producer.family(
        'ferry_inference_compute_duration_seconds',
        "Time of the session.run that computed a request's outputs (the merged run when batched)",
        's',
        LATENCY_BUCKETS_SECONDS,
      ),
      batchSize: producer.family(
        'ferry_inference_batch_size',
        'Rows (first-dimension entries, summed over merged requests) per session.run',
        '',
        BATCH_SIZE_BUCKETS,
      ),
      coldStartDuration: producer.family(
        'ferry_inference_cold_start_duration_seconds',
        'Time to load a model into onnxruntime at process start',
        's',
        COLD_START_BUCKETS_SECONDS,
      ),
    };
  }

  private observeCounters(meter: Meter): void {
    // `servedOnly`: leave out the counters of requests for unknown models (model="").
    const observeEach =
      (read: (c: ModelCounters) => number, servedOnly = false) =>
      (result: ObservableResult) => {
        for (const c of this.counters) {
          if (!(servedOnly && c.attributes.model === '')) result.observe(read(c), c.attributes);
        }
      };
    meter
      .createObservableCounter('ferry_inference_requests_total', {
        description: 'Inference requests received, per model version',
      })
      .addCallback(observeEach((c) => c.requests));
    meter
      .createObservableCounter('ferry_inference_errors_total', {
        description: 'Inference requests answered with an error, by HTTP status code',
      })
      .addCallback((result: ObservableResult) => {
        for (const c of this.counters) {
          for (const [code, n] of c.errorsByCode) result.observe(n, { ...c.attributes, code: String(code) });
        }
      });
    meter
      .createObservableCounter('ferry_inference_executions_total', {
        description: 'session.run calls; several requests share one when batched',
      })
      .addCallback(observeEach((c) => c.executions, true));
    meter
      .createObservableGauge('ferry_inference_in_flight', {
        description: 'Inference requests received and not yet answered',
      })
      .addCallback(observeEach((c) => c.inFlight, true));
    meter
      .createObservableCounter('ferry_inference_cold_starts_total', {
        description: 'Model loads at process start (a cold start of this model version)',
      })
      .addCallback(observeEach((c) => c.coldStarts, true));
  }

  countersFor(model: string, version: string): ModelCounters {
    let c = this.counters.find((x) => x.attributes.model === model && x.attributes.version === version);
    if (!c) {
      c = new ModelCounters(model, version, this.histograms);
      this.counters.push(c);
    }
    return c;
  }

  recordDuration(counters: ModelCounters, seconds: number): void {
    counters.duration.record(seconds);
  }

  recordQueueAndCompute(counters: ModelCounters, queueSeconds: number, computeSeconds: number): void {
    counters.queueDuration.record(queueSeconds);
    counters.computeDuration.record(computeSeconds);
  }

  recordRun(counters: ModelCounters, rows: number): void {
    counters.executions++;
    counters.batchSize.record(rows);
  }

  recordColdStart(counters: ModelCounters, seconds: number): void {
    counters.coldStarts++;
    counters.coldStartDuration.record(seconds);
  }
}
