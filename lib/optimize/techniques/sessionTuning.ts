/**
 * session-tuning: measure onnxruntime session options on the target and keep the best — intra-op
 * threads × execution mode (sequential, or parallel with inter-op threads) × graph optimization level,
 * a bounded grid run within a time budget. The model bytes stay as they are; the chosen options travel
 * with the candidate into the image's ferry-models.json (`sessionOptions`), where the server uses them.
 *
 * Options: `timeBudgetMs` (default 8000), `objective` 'cost' (default: p50 × cores, so a second thread
 * must nearly halve the latency to be kept) or 'latency' (lowest p50), `maxThreads` (default the target's).
 * Runs in the process that calls it, one configuration at a time, on the engine's sample inputs.
 */
import * as ort from 'onnxruntime-node';
import type { ModelAnalysis } from '../../onnx/analyze';
import { latencyStats } from '../measureProtocol';
import { generateFeeds, toOrtFeeds } from '../sampleInputs';
import type { OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../technique';
import type { ServingSessionOptions } from '../types';

export const SESSION_TUNING_ID = 'session-tuning';

/** What an untuned candidate is served with: all the target's cores for one operator at a time. */
export function defaultSessionOptions(target: Pick<TargetSpec, 'threads'>): ServingSessionOptions {
  return { intraOpNumThreads: Math.max(1, target.threads) };
}

export interface TuningTrial {
  options: ServingSessionOptions;
  p50Ms: number;
  p95Ms: number;
  loadMs: number;
  iterations: number;
  cores: number;
}

/** The grid, most promising first, so that a short budget still measures the likely winners. */
export function tuningGrid(threads: number): ServingSessionOptions[] {
  const intra = [...new Set([threads, 1, 2, 4, 8].filter((t) => t >= 1 && t <= threads))].sort((a, b) => b - a);
  const levels: Array<NonNullable<ServingSessionOptions['graphOptimizationLevel']>> = ['all', 'extended', 'basic'];
  const grid: ServingSessionOptions[] = [];
  for (const level of levels) {
    for (const t of intra)
      grid.push({
        intraOpNumThreads: t,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: level,
      });
    if (threads >= 2) {
      for (const t of intra.filter((x) => x * 2 <= threads || x === 1)) {
        grid.push({
          intraOpNumThreads: t,
          interOpNumThreads: 2,
          executionMode: 'parallel',
          graphOptimizationLevel: level,
        });
      }
    }
  }
  return grid;
}

function coresOf(o: ServingSessionOptions, threads: number): number {
  const inter = o.executionMode === 'parallel' ? (o.interOpNumThreads ?? 1) : 1;
  return Math.max(1, Math.min(threads, (o.intraOpNumThreads ?? threads) * inter));
}

export function describeOptions(o: ServingSessionOptions): string {
  return `intra ${o.intraOpNumThreads ?? 'default'}, ${o.executionMode ?? 'sequential'}${o.executionMode === 'parallel' ? ` (inter ${o.interOpNumThreads})` : ''}, level ${o.graphOptimizationLevel ?? 'all'}`;
}

export const sessionTuning: OptimizationTechnique = {
  id: SESSION_TUNING_ID,
  title: 'Session tuning',
  description:
    'Measures intra-op threads, execution mode (sequential / parallel with inter-op threads) and graph optimization level on the target within a time budget, and serves the model with the best options.',

  expectedEffect(analysis: ModelAnalysis, target: TargetSpec): string {
    const branches =
      (analysis.opHistogram.If ?? 0) + (analysis.opHistogram.Loop ?? 0) + (analysis.opHistogram.Concat ?? 0);
    if (target.threads <= 1)
      return 'One core on the target: only the optimization level is left to tune; expect a small change at most.';
    return `Same outputs; picks how many of the target's ${target.threads} cores to use per request (fewer threads often cost less for small models${branches ? ', parallel execution can help a graph with independent branches' : ''}).`;
  },

  applicability(_analysis: ModelAnalysis, target: TargetSpec) {
    if (target.kind !== 'cpu')
      return { ok: false, reason: 'thread and execution-mode tuning applies to the CPU execution provider' };
    return { ok: true };
  },

  async apply(model: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    const check = this.applicability(ctx.analysis, ctx.target);
    if (!check.ok) return { applied: false, reason: check.reason };
    const budgetMs = Number(ctx.options?.timeBudgetMs ?? 8000);
    const objective = ctx.options?.objective === 'latency' ? 'latency' : 'cost';
    const threads = Math.max(1, Math.min(ctx.target.threads, Number(ctx.options?.maxThreads ?? ctx.target.threads)));
    let feeds: Record<string, ort.Tensor>;
    try {
      feeds = toOrtFeeds(ctx.sampleInputs ?? generateFeeds(ctx.analysis.inputs, { batch: 1, seed: 42 }));
    } catch (err) {
      return { applied: false, reason: `no inputs to measure with: ${(err as Error).message}` };
    }

    const grid = tuningGrid(threads);
    const defaults: ServingSessionOptions = {
      ...defaultSessionOptions({ threads }),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    const perConfigMs = Math.max(40, budgetMs / grid.length);
    const started = performance.now();
    const trials: TuningTrial[] = [];
    const failures: string[] = [];
    for (const [i, options] of grid.entries()) {
      if (i > 0 && performance.now() - started > budgetMs) break;
      ctx.onProgress?.(i / grid.length, describeOptions(options));
      try {
        trials.push(await measureOptions(model, feeds, options, perConfigMs, threads));
      } catch (err) {
        failures.push(`${describeOptions(options)}: ${(err as Error).message}`);
      }
    }
    ctx.onProgress?.(1);
    if (trials.length === 0)
      return {
        applied: false,
        reason: `onnxruntime could not run the model with any tried options (${failures[0] ?? 'no trials'})`,
      };
    const key = (t: TuningTrial) => (objective === 'latency' ? t.p50Ms : t.p50Ms * t.cores);
    const best = trials.reduce((a, b) => (key(b) < key(a) ? b : a));
    const baseline = trials.find((t) => sameOptions(t.options, defaults));
    const skipped = grid.length - trials.length - failures.length;
    const notes = [
      `measured ${trials.length} of ${grid.length} configurations in ${Math.round(performance.now() - started)} ms (objective: ${objective === 'latency' ? 'lowest p50' : 'lowest p50 × cores'})${skipped ? `; ${skipped} skipped for the time budget` : ''}`,
      `best: ${describeOptions(best.options)} — p50 ${best.p50Ms.toFixed(3)} ms on ${best.cores} core(s)`,
      ...(baseline
        ? [`default (${describeOptions(defaults)}): p50 ${baseline.p50Ms.toFixed(3)} ms on ${baseline.cores} core(s)`]
        : []),
      ...failures.slice(0, 2).map((f) => `failed: ${f}`),
    ];
    if (baseline && sameOptions(best.options, defaults)) {
      return {
        applied: false,
        reason: `the defaults were already the best of ${trials.length} measured configurations (${describeOptions(defaults)})`,
      };
    }
    return { applied: true, model, notes, sessionOptions: best.options };
  },
};

function sameOptions(a: ServingSessionOptions, b: ServingSessionOptions): boolean {
  return (
    a.intraOpNumThreads === b.intraOpNumThreads &&
    (a.executionMode ?? 'sequential') === (b.executionMode ?? 'sequential') &&
    (a.executionMode !== 'parallel' || a.interOpNumThreads === b.interOpNumThreads) &&
    (a.graphOptimizationLevel ?? 'all') === (b.graphOptimizationLevel ?? 'all')
  );
}

async function measureOptions(
  model: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  options: ServingSessionOptions,
  budgetMs: number,
  threads: number,
): Promise<TuningTrial> {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(model, { ...options, logSeverityLevel: 3 });
  const loadMs = performance.now() - t0;
  try {
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const ms: number[] = [];
    const start = performance.now();
    while (ms.length < 5 || (performance.now() - start < budgetMs && ms.length < 2000)) {
      const t = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const stats = latencyStats(ms);
    return {
      options,
      p50Ms: stats.p50Ms,
      p95Ms: stats.p95Ms,
      loadMs,
      iterations: stats.iterations,
      cores: coresOf(options, threads),
    };
  } finally {
    await session.release();
  }
}
