/**
 * The inputs every candidate of a run is measured on, made once: a batch-1 feed (latency), a larger batch
 * when the batch dim is dynamic (throughput, row independence), and the agreement set its outputs are
 * compared on (calibration samples when given: realistic data beats noise).
 */
import type { ModelAnalysis } from '../onnx/analyze';
import { type FixedInputJson, generateFeeds, isBatchDynamic } from './sampleInputs';
import type { CalibrationSample, Feeds } from './technique';

export interface EngineInputOptions {
  inputs?: { fixed?: Record<string, FixedInputJson>; dims?: Record<string, number> };
  calibration?: CalibrationSample[];
  /** The larger batch (default 16). */
  largeBatch?: number;
  /** Rows compared for agreement (default 256 in batches of 32; 64 single runs when the batch dim is fixed). */
  agreementSamples?: number;
}

export interface EngineInputs {
  batch1: Feeds;
  largeBatchSize: number;
  /** Only when the batch dim is dynamic and largeBatchSize > 1. */
  largeBatch?: Feeds;
  agreement: Feeds[];
  /** Rows in the agreement set. */
  agreementRows: number;
}

export function makeEngineInputs(analysis: ModelAnalysis, opts: EngineInputOptions): EngineInputs {
  const feedOpts = { dims: opts.inputs?.dims, fixed: opts.inputs?.fixed };
  const batch1 = generateFeeds(analysis.inputs, { ...feedOpts, batch: 1, seed: 1 });
  const batchDynamic = isBatchDynamic(analysis.inputs);
  const largeBatchSize = opts.largeBatch ?? 16;
  const largeBatch =
    batchDynamic && largeBatchSize > 1
      ? generateFeeds(analysis.inputs, { ...feedOpts, batch: largeBatchSize, seed: 2 })
      : undefined;
  const agreement = agreementFeeds(analysis, feedOpts, batchDynamic, opts.calibration, opts.agreementSamples);
  const agreementRows = agreement.reduce((n, f) => n + rowsOf(f), 0);
  return { batch1, largeBatchSize, largeBatch, agreement, agreementRows };
}

function rowsOf(feeds: Feeds): number {
  for (const f of Object.values(feeds)) if (f.dims.length > 0) return f.dims[0]!;
  return 1;
}

/** The agreement set: calibration samples when given, else one batch of N rows, else N single runs. */
function agreementFeeds(
  analysis: ModelAnalysis,
  feedOpts: { dims?: Record<string, number>; fixed?: Record<string, FixedInputJson> },
  batchDynamic: boolean,
  calibration: CalibrationSample[] | undefined,
  samples?: number,
): Feeds[] {
  if (calibration?.length) {
    return calibration.slice(0, samples ?? 64).map((sample, i) => {
      const generated = generateFeeds(analysis.inputs, {
        ...feedOpts,
        batch: sample[Object.keys(sample)[0] ?? '']?.dims[0] ?? 1,
        seed: 100 + i,
      });
      for (const [name, t] of Object.entries(sample)) generated[name] = { type: 'float32', dims: t.dims, data: t.data };
      return generated;
    });
  }
  if (batchDynamic) {
    // Batches of at most 32 rows, so that comparing many rows never needs a large activation buffer.
    const rows = samples ?? 256;
    return Array.from({ length: Math.ceil(rows / 32) }, (_, i) =>
      generateFeeds(analysis.inputs, { ...feedOpts, batch: Math.min(32, rows - 32 * i), seed: 3 + i }),
    );
  }
  return Array.from({ length: samples ?? 64 }, (_, i) =>
    generateFeeds(analysis.inputs, { ...feedOpts, batch: 1, seed: 100 + i }),
  );
}
