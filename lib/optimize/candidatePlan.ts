/**
 * Which candidates a run builds: the selected techniques alone, then the combinations worth measuring (every
 * weight transform followed by graph-optimize; pruning followed by int8-dynamic). Session tuning is not
 * planned here: the engine runs it last, on the best candidate found by then.
 */
import { OptimizationNotPossibleError } from './errors';
import type { OptimizationTechnique } from './technique';
import { GRAPH_OPTIMIZE_ID } from './techniques/graphOptimize';
import { SESSION_TUNING_ID } from './techniques/sessionTuning';

export const ORIGINAL_CANDIDATE = 'original';

export function candidateId(techniques: string[]): string {
  // '.' joins steps: ids become image tags, which allow [A-Za-z0-9_.-] only.
  return techniques.length ? techniques.join('.') : ORIGINAL_CANDIDATE;
}

/** The candidates to build, in order: singles, then combinations whose steps are all selected. */
export function candidatePlan(selected: string[], combinations: boolean): string[][] {
  const model = selected.filter((id) => id !== SESSION_TUNING_ID);
  const plan: string[][] = model.map((id) => [id]);
  if (combinations) {
    if (model.includes(GRAPH_OPTIMIZE_ID)) {
      for (const id of model) if (id !== GRAPH_OPTIMIZE_ID) plan.push([id, GRAPH_OPTIMIZE_ID]);
    }
    if (model.includes('prune-magnitude') && model.includes('int8-dynamic'))
      plan.push(['prune-magnitude', 'int8-dynamic']);
  }
  return plan;
}

/** The registered techniques with these ids (all of them when none are given); an unknown id is an error. */
export function selectTechniques(registry: OptimizationTechnique[], ids?: string[]): OptimizationTechnique[] {
  if (!ids) return [...registry];
  const byId = new Map(registry.map((t) => [t.id, t]));
  const unknown = ids.filter((id) => !byId.has(id));
  if (unknown.length) {
    throw new OptimizationNotPossibleError(
      'unknown-technique',
      `unknown technique${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}; registered: ${registry.map((t) => t.id).join(', ') || '(none)'}`,
    );
  }
  return [...new Set(ids)].map((id) => byId.get(id)!);
}
