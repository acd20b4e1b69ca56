/**
 * The accuracy budget: how far a candidate may drift from the original before Ferry will not offer it.
 *
 * Defaults, and why:
 * - cosine ≥ 0.99: the candidate's output vectors point within ~8° of the original's on every output.
 *   Correct INT8 and FP16 conversions of MLPs, CNNs and transformer encoders land above 0.999;
 *   a transform that damaged the model (a bad scale, aggressive pruning without fine-tuning) lands
 *   well below 0.99, so the line separates the two with room on both sides.
 * - top-1 ≥ 0.99: at most 1 row in 100 changes its predicted class. This is the usual acceptance line
 *   for post-training quantization (MLPerf Inference accepts an INT8 result at ≥ 99% of the FP32
 *   reference's accuracy), stated as agreement with the original because Ferry has no labels.
 * - max abs error: not budgeted by default, because it depends on the scale of the outputs; set it
 *   when the outputs have a known scale (probabilities, normalised embeddings).
 */
import { OptimizationNotPossibleError } from './errors';
import type { AccuracyBudget, AgreementFigures } from './types';

export const DEFAULT_ACCURACY_BUDGET: AccuracyBudget = { minCosine: 0.99, minTop1: 0.99 };

export function resolveBudget(partial?: Partial<AccuracyBudget>): AccuracyBudget {
  const budget: AccuracyBudget = { ...DEFAULT_ACCURACY_BUDGET };
  if (partial?.minCosine !== undefined) budget.minCosine = partial.minCosine;
  if (partial?.minTop1 !== undefined) budget.minTop1 = partial.minTop1;
  if (partial?.maxAbsError !== undefined) budget.maxAbsError = partial.maxAbsError;
  for (const [k, v] of Object.entries(budget)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new OptimizationNotPossibleError(
        'invalid-budget',
        `accuracy budget ${k} must be a non-negative number, got ${v}`,
      );
  }
  if (budget.minCosine > 1 || budget.minTop1 > 1)
    throw new OptimizationNotPossibleError('invalid-budget', 'accuracy budget cosine and top1 are at most 1');
  return budget;
}

/** `cosine=0.99,top1=0.99,maxabs=0.01` → a partial budget. */
export function parseBudget(text: string): Partial<AccuracyBudget> {
  const out: Partial<AccuracyBudget> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [key, raw] = part.split('=');
    const value = Number(raw);
    if (raw === undefined || !Number.isFinite(value))
      throw new OptimizationNotPossibleError('invalid-budget', `accuracy budget "${part}": expected key=number`);
    switch (key?.trim().toLowerCase()) {
      case 'cosine':
        out.minCosine = value;
        break;
      case 'top1':
      case 'top-1':
        out.minTop1 = value;
        break;
      case 'maxabs':
      case 'max-abs':
        out.maxAbsError = value;
        break;
      default:
        throw new OptimizationNotPossibleError(
          'invalid-budget',
          `accuracy budget "${part}": known keys are cosine, top1, maxabs`,
        );
    }
  }
  return out;
}

/** Why the budget rejects these figures, or undefined when they are within it. */
export function budgetRejection(a: AgreementFigures, budget: AccuracyBudget): string | undefined {
  const reasons: string[] = [];
  if (!(a.cosine >= budget.minCosine)) reasons.push(`cosine ${fmt(a.cosine)} < ${budget.minCosine}`);
  if (a.top1 !== null && !(a.top1 >= budget.minTop1))
    reasons.push(`top-1 agreement ${fmt(a.top1)} < ${budget.minTop1}`);
  if (budget.maxAbsError !== undefined && !(a.maxAbsError <= budget.maxAbsError))
    reasons.push(`max abs error ${a.maxAbsError.toExponential(2)} > ${budget.maxAbsError}`);
  return reasons.length ? `outside the accuracy budget: ${reasons.join(', ')}` : undefined;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}
