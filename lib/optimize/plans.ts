/**
 * The plans the optimize stage offers ARE its measured candidates: each with its techniques, its row
 * of the trade-off table, whether it is within the accuracy budget and, if not, why. The approval
 * Update must name a plan within the budget; one-click (and the timeout) take the table's best.
 */
import type { BenchmarkReport, ModelSummary, OptimizationTable, PlanOption } from './types';

export const ORIGINAL_PLAN = 'original';

/**
 * What one-click searches when the user names no techniques: the ones that cut latency or size within
 * seconds. Distillation (a training job with a time budget) and magnitude pruning (smaller only once
 * compressed; no faster with dense kernels) are for review mode or an explicit --techniques.
 */
export const ONE_CLICK_TECHNIQUES = ['graph-optimize', 'int8-dynamic', 'int8-static', 'fp16-weights', 'session-tuning'];

const x = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? '?' : `${r.toFixed(2)}x`);

export function plansFromTable(table: OptimizationTable, summary?: ModelSummary): PlanOption[] {
  return table.candidates
    .filter((c) => c.state === 'measured' && c.row)
    .map((c) => {
      const r = c.row!;
      const top1 = r.agreement.top1 === null ? '' : `, top-1 ${r.agreement.top1.toFixed(3)}`;
      const measured =
        c.id === ORIGINAL_PLAN
          ? `Baseline: p50 ${r.batch1.p50Ms.toFixed(3)} ms at batch 1${summary ? `, ${summary.parameterCount.toLocaleString()} parameters` : ''}.`
          : `Measured: ${x(r.vsOriginal.sizeRatio)} smaller, ${x(r.vsOriginal.speedupP50)} speed at batch 1, cosine ${r.agreement.cosine.toFixed(5)}${top1}.`;
      return {
        id: c.id,
        title: c.title,
        description: c.notes.slice(0, 3).join('; ') || c.title,
        expectedEffect: measured,
        techniques: c.techniques,
        row: r,
        withinBudget: c.withinBudget,
        ...(c.rejection ? { rejection: c.rejection } : {}),
      };
    });
}

/** The chosen candidate against the original, in the pipeline's BenchmarkReport shape (from the table, not re-measured). */
export function benchmarkReportFor(table: OptimizationTable, plan: string): BenchmarkReport {
  const original = table.candidates.find((c) => c.id === ORIGINAL_PLAN)?.row;
  const chosen = table.candidates.find((c) => c.id === plan)?.row;
  if (!original || !chosen) throw new Error(`no measured row for ${!original ? ORIGINAL_PLAN : plan}`);
  const lat = (r: typeof original) => ({ p50Ms: r.batch1.p50Ms, p95Ms: r.batch1.p95Ms, meanMs: r.batch1.meanMs });
  return {
    plan,
    iterations: chosen.batch1.iterations,
    batchSize: 1,
    original: { sizeBytes: original.sizeBytes, latency: lat(original) },
    candidate: { sizeBytes: chosen.sizeBytes, latency: lat(chosen) },
    maxAbsDiff: chosen.agreement.maxAbsError,
    speedup: original.batch1.p50Ms / chosen.batch1.p50Ms,
    sizeRatio: original.sizeBytes / chosen.sizeBytes,
  };
}
