/**
 * Judging measured candidates against the original measured in the same run: the trade-off row (sizes,
 * latency, memory, agreement, cost and the ratios to the original), the accuracy budget's verdict, and
 * whether the image should serve it with dynamic batching; then the best candidate within the budget.
 */
import { rm } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import type { TargetSpec } from '../targets/targetSpec';
import { compareOutputs } from './agreement';
import { budgetRejection } from './budget';
import type { Built } from './candidateBuild';
import type { CandidateMeasured } from './candidateMeasure';
import { ORIGINAL_CANDIDATE } from './candidatePlan';
import type { MeasureResponse, OutputsWire } from './measureProtocol';
import { coresUsed, costPerMillionUsd, pickBest } from './score';
import { decideServingBatching } from './servingBatching';
import type { AccuracyBudget, CandidateMeasurement, OptimizationCandidate, ServingSessionOptions } from './types';

export interface EngineCandidate extends OptimizationCandidate {
  /** The candidate's model file in workDir (measured candidates). */
  modelPath?: string;
}

type Measured = Extract<MeasureResponse, { ok: true }>;

export class CandidateJudge {
  private readonly originalGzip: number;
  private readonly original: Measured;
  private readonly reference: OutputsWire;

  constructor(
    private readonly run: {
      /** The original model and its measurement: every row is relative to them. */
      model: Uint8Array;
      original: CandidateMeasured;
      target: TargetSpec;
      budget: AccuracyBudget;
      /** Rows the agreement set holds. */
      agreementRows: number;
      classifier: 'auto' | boolean;
      /** Set when the run measures a larger batch. */
      largeBatchSize?: number;
      /** Technique id → title, for candidates' titles. */
      titles: Map<string, string>;
    },
  ) {
    this.original = run.original.response as Measured;
    this.reference = run.original.outputs!;
    this.originalGzip = gzipSync(run.model).length;
  }

  /** The original as a candidate: the reference, always within the budget. */
  originalCandidate(sessionOptions: ServingSessionOptions): EngineCandidate {
    const row = this.row(this.run.model, this.original, this.reference, sessionOptions).row;
    const batching = this.servingBatching(this.original, row);
    return {
      id: ORIGINAL_CANDIDATE,
      title: 'Keep as is',
      techniques: [],
      state: 'measured',
      withinBudget: true,
      notes: ['the reference every other candidate is compared with', batching.note],
      row,
      sessionOptions,
      batching: batching.batching,
      modelPath: this.run.original.modelPath,
    };
  }

  title(techniques: string[]): string {
    return techniques.map((t) => this.run.titles.get(t) ?? t).join(' → ');
  }

  /** A planned candidate that was not built: not applicable or failed, with why. */
  notBuilt(id: string, b: Built): EngineCandidate {
    // The steps before the last one were built and are their own candidates: say only what stopped this one.
    const last = b.techniques[b.techniques.length - 1];
    const reason = b.techniques.length > 1 && b.reason ? `${last}: ${b.reason}` : b.reason;
    return {
      id,
      title: this.title(b.techniques),
      techniques: b.techniques,
      state: b.state === 'built' ? 'failed' : b.state,
      withinBudget: false,
      reason,
      notes: [],
    };
  }

  /** A measured candidate: failed when onnxruntime could not load or run it (its file is deleted), else judged. */
  async measured(
    id: string,
    b: Built,
    m: CandidateMeasured,
    sessionOptions: ServingSessionOptions,
  ): Promise<EngineCandidate> {
    const title = this.title(b.techniques);
    if (!m.response.ok || !m.outputs) {
      const r = m.response as Extract<MeasureResponse, { ok: false }>;
      await rm(m.modelPath, { force: true }); // never offered, so not kept
      return {
        id,
        title,
        techniques: b.techniques,
        state: 'failed',
        withinBudget: false,
        reason:
          r.stage === 'load'
            ? `onnxruntime cannot load it: ${r.error}`
            : `onnxruntime fails to run it (${r.stage}): ${r.error}`,
        notes: b.notes,
      };
    }
    const { row, problem } = this.row(b.model!, m.response, m.outputs, sessionOptions);
    const rejection = problem
      ? `outputs differ from the original's: ${problem}`
      : budgetRejection(row.agreement, this.run.budget);
    const batching = rejection ? undefined : this.servingBatching(m.response, row);
    return {
      id,
      title,
      techniques: b.techniques,
      state: 'measured',
      withinBudget: !rejection,
      rejection,
      notes: batching ? [...b.notes, batching.note] : b.notes,
      row,
      sessionOptions,
      batching: batching?.batching,
      modelPath: m.modelPath,
    };
  }

  private row(
    model: Uint8Array,
    resp: Measured,
    outputs: OutputsWire,
    sessionOptions: ServingSessionOptions,
  ): { row: CandidateMeasurement; problem?: string } {
    const { target, agreementRows, classifier, largeBatchSize } = this.run;
    const orig = this.original;
    const gzipBytes = model === this.run.model ? this.originalGzip : gzipSync(model).length;
    const agreement = compareOutputs(this.reference, outputs, agreementRows, classifier);
    const cores = coresUsed(sessionOptions, target);
    const row: CandidateMeasurement = {
      sizeBytes: model.length,
      gzipBytes,
      loadMs: resp.loadMs,
      batch1: { ...pickLatency(resp.batch1), batchSize: 1, throughputPerSec: 1000 / resp.batch1.meanMs },
      largeBatch:
        resp.largeBatch && largeBatchSize !== undefined
          ? {
              ...pickLatency(resp.largeBatch),
              batchSize: largeBatchSize,
              throughputPerSec: (1000 * largeBatchSize) / resp.largeBatch.meanMs,
            }
          : undefined,
      peakRssBytes: resp.peakRssBytes,
      modelRssBytes: Math.max(0, resp.peakRssBytes - resp.rssBeforeLoadBytes),
      agreement: agreement.figures,
      cores,
      costPerMillionUsd: costPerMillionUsd(resp.batch1.p50Ms, cores, resp.peakRssBytes),
      vsOriginal: {
        sizeRatio: this.run.model.length / model.length,
        gzipRatio: this.originalGzip / gzipBytes,
        speedupP50: orig.batch1.p50Ms / resp.batch1.p50Ms,
        speedupLargeBatch:
          resp.largeBatch && orig.largeBatch ? orig.largeBatch.p50Ms / resp.largeBatch.p50Ms : undefined,
        memoryRatio: orig.peakRssBytes / resp.peakRssBytes,
      },
    };
    return { row, problem: agreement.problem };
  }

  private servingBatching(resp: Measured, row: CandidateMeasurement) {
    return decideServingBatching({
      original: this.original.rowIndependence,
      candidate: resp.rowIndependence,
      row,
      budget: this.run.budget,
    });
  }
}

/** The one-click choice: the lowest score among the measured candidates within the budget (score.ts). */
export function bestCandidate<T extends OptimizationCandidate>(candidates: T[]): T | undefined {
  const pool = candidates.filter((c) => c.state === 'measured' && c.withinBudget && c.row);
  const best = pickBest(
    pool.map((c) => ({
      id: c.id,
      cost: c.row!.costPerMillionUsd,
      p50Ms: c.row!.batch1.p50Ms,
      gzipBytes: c.row!.gzipBytes,
    })),
  );
  return best && pool.find((c) => c.id === best.id);
}

function pickLatency(t: { p50Ms: number; p95Ms: number; meanMs: number; iterations: number }) {
  return { p50Ms: t.p50Ms, p95Ms: t.p95Ms, meanMs: t.meanMs, iterations: t.iterations };
}
