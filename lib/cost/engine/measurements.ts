/**
 * The engine's view of a model: the optimize stage's measured row of the candidate that will be served
 * (lib/optimize/types.ts's CandidateMeasurement), turned into service times, memory and a cold start.
 */
import type { CandidateMeasurement, TensorSpec } from '../../optimize/types';
import type { ModelMeasurements } from './types';

/**
 * A replica's start without its model: the inference server booted and ready to load it. The gateway's
 * README measures a cold start of a 10 MB model at 167–225 ms without its standby process (60–69 ms with
 * it); a container-based platform adds its own start on top (strategies/serverless.ts).
 */
export const REPLICA_BOOT_MS = 150;

/** Bytes per tensor element in a v2 JSON request body ("-0.123456," and the like). */
const JSON_BYTES_PER_ELEMENT = 10;

export function measurementsFromCandidate(
  row: CandidateMeasurement,
  opts: { source: string; inputs?: TensorSpec[]; coldStartMs?: number },
): ModelMeasurements {
  return {
    source: opts.source,
    batch1: { meanMs: row.batch1.meanMs, p50Ms: row.batch1.p50Ms, p95Ms: row.batch1.p95Ms },
    threads: Math.max(1, row.cores),
    largeBatch: row.largeBatch
      ? { batchSize: row.largeBatch.batchSize, throughputPerSec: row.largeBatch.throughputPerSec }
      : undefined,
    peakRssBytes: row.peakRssBytes,
    modelSizeBytes: row.sizeBytes,
    loadMs: row.loadMs,
    coldStartMs: opts.coldStartMs ?? REPLICA_BOOT_MS + row.loadMs,
    coldStartMeasured: opts.coldStartMs !== undefined,
    requestBytes: requestBytesOf(opts.inputs ?? []),
  };
}

/** A batch-1 request's body size: each input's elements (symbolic dims taken as 1) as JSON numbers. */
export function requestBytesOf(inputs: TensorSpec[]): number {
  let bytes = 256;
  for (const t of inputs) {
    const elements = t.shape.reduce<number>((n, d) => n * (typeof d === 'number' && d > 0 ? d : 1), 1);
    bytes += elements * JSON_BYTES_PER_ELEMENT + 128;
  }
  return bytes;
}
