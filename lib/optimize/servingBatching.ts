/**
 * Should the image serve a candidate with dynamic batching? Only when it is safe and pays:
 *  - safe: the ORIGINAL model treats rows independently — its rows run alone match the same rows run in
 *    a batch to float rounding (different kernels for different batch sizes), so the architecture mixes
 *    no rows; and the CANDIDATE's rows in a batch stay within the accuracy budget's cosine of its rows
 *    alone (dynamic int8 quantization takes one scale per batch, so batch mates nudge each other a little);
 *  - pays: the candidate's per-row throughput at the large batch beats batch 1 by MIN_GAIN.
 * The reason for the decision, either way, becomes a note on the candidate.
 */

import type { RowIndependence } from './rowIndependence';
import type { AccuracyBudget, CandidateMeasurement, ServingBatching } from './types';

/** Rows alone vs in a batch may differ by this much relative to the outputs' scale and still be "the same". */
export const ROUNDING_TOLERANCE = 1e-3;
/** Per-row throughput at the large batch over batch 1 needed before batching is worth its queueing. */
export const MIN_GAIN = 1.25;
/** Batching never waits on purpose: while one batch computes, the next requests queue by themselves. */
const QUEUE_DELAY_MS = 0;

export interface BatchingDecision {
  batching?: ServingBatching;
  note: string;
}

export function decideServingBatching(input: {
  original?: RowIndependence;
  candidate?: RowIndependence;
  row: CandidateMeasurement;
  budget: AccuracyBudget;
}): BatchingDecision {
  const { original, candidate, row, budget } = input;
  const off = (why: string): BatchingDecision => ({ note: `dynamic batching off: ${why}` });
  if (!row.largeBatch || !original || !candidate)
    return off('the batch dimension is fixed or the large batch did not run');
  if (original.notRowShaped) return off(original.notRowShaped);
  if (original.rows === 0) return off('no rows could be compared');
  const tolerance = ROUNDING_TOLERANCE * Math.max(1, original.maxAbsRef);
  if (!(original.maxAbsDiff <= tolerance)) {
    return off(
      `the original model mixes rows of a batch (a row alone differs from the same row in a batch by up to ${formatNumber(original.maxAbsDiff)})`,
    );
  }
  if (candidate.notRowShaped) return off(candidate.notRowShaped);
  if (!(candidate.minCosine >= budget.minCosine)) {
    return off(
      `in a batch its rows drift from the same rows alone (cosine ${candidate.minCosine.toFixed(5)} < budget ${budget.minCosine})`,
    );
  }
  const gain = row.largeBatch.throughputPerSec / row.batch1.throughputPerSec;
  if (!(gain >= MIN_GAIN))
    return off(
      `batch ${row.largeBatch.batchSize} serves only ${gain.toFixed(2)}x the rows per second of batch 1 (needs ${MIN_GAIN}x)`,
    );
  return {
    batching: { maxBatchSize: row.largeBatch.batchSize, maxQueueDelayMs: QUEUE_DELAY_MS },
    note: `dynamic batching on (up to ${row.largeBatch.batchSize} rows): rows are independent and batch ${row.largeBatch.batchSize} serves ${gain.toFixed(2)}x the rows per second of batch 1`,
  };
}

function formatNumber(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(3) : String(x);
}
