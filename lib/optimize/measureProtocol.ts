/** What the engine and its measuring child process (measureChild.ts) say to each other, as JSON files. */

import type { RowIndependence } from './rowIndependence';
import type { FeedTensorWire } from './sampleInputs';
import type { ServingSessionOptions } from './types';

export interface MeasureRequest {
  modelPath: string;
  sessionOptions: ServingSessionOptions;
  /** Runs whose outputs are compared with the original's (same feeds for every candidate). */
  agreement: Array<Record<string, FeedTensorWire>>;
  /** Where the child writes those outputs (OutputsWire). */
  outputsPath: string;
  batch1: Record<string, FeedTensorWire>;
  largeBatch?: { batchSize: number; feeds: Record<string, FeedTensorWire> };
  warmup: number;
  minIterations: number;
  maxIterations: number;
  /** Keep timing until this many milliseconds have passed (and minIterations are done). */
  measureMs: number;
}

export interface TimedRuns {
  iterations: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
}

export type MeasureResponse =
  | {
      ok: true;
      loadMs: number;
      rssBeforeLoadBytes: number;
      peakRssBytes: number;
      batch1: TimedRuns;
      largeBatch?: TimedRuns;
      largeBatchError?: string;
      /** Rows of the large batch run alone against the batched run (for the dynamic-batching decision). */
      rowIndependence?: RowIndependence;
    }
  | { ok: false; stage: 'load' | 'agreement' | 'batch1' | 'large-batch'; error: string };

export interface OutputsWire {
  /** One record per agreement run: output name → tensor. */
  runs: Array<Record<string, FeedTensorWire>>;
  /** Outputs that are not numeric tensors (sequences, maps, strings): not compared. */
  skipped: string[];
}

export function latencyStats(ms: number[]): TimedRuns {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    iterations: ms.length,
    p50Ms: at(0.5),
    p95Ms: at(0.95),
    meanMs: ms.reduce((a, b) => a + b, 0) / Math.max(1, ms.length),
  };
}
