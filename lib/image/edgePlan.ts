/**
 * Which optimization plan an edge image serves: the int8 plan when the optimize stage measured one
 * within the accuracy budget, else the table's own best. An edge device is short of memory and of
 * bandwidth for updates more than anything, and int8 weights are about a quarter of fp32 ones, so within
 * the budget int8 wins even when another plan scores a little cheaper on the server the table measured.
 * Among int8 plans (dynamic, static), the lowest score.
 */
import type { OptimizationCandidate, OptimizationTable } from '../optimize/types';

export const INT8_TECHNIQUES: readonly string[] = ['int8-dynamic', 'int8-static'];

export interface EdgePlanChoice {
  candidate: OptimizationCandidate;
  /** Why this one, in a sentence. */
  reason: string;
}

const isInt8 = (c: OptimizationCandidate) => c.techniques.some((t) => INT8_TECHNIQUES.includes(t));
const score = (c: OptimizationCandidate) => c.row?.costPerMillionUsd ?? Number.POSITIVE_INFINITY;

export function chooseEdgePlan(table: OptimizationTable): EdgePlanChoice {
  const usable = table.candidates.filter((c) => c.state === 'measured' && c.withinBudget);
  const int8 = usable.filter(isInt8).sort((a, b) => score(a) - score(b));
  if (int8[0]) {
    return { candidate: int8[0], reason: `${int8[0].id}: the int8 plan within the accuracy budget` };
  }
  const best = table.candidates.find((c) => c.id === table.best);
  if (!best) throw new Error(`the optimization table names "${table.best}" as best, but has no such candidate`);
  const int8Tried = table.candidates.filter(isInt8);
  const why = int8Tried.length
    ? int8Tried.map((c) => `${c.id} ${c.rejection ?? c.reason ?? c.state}`).join('; ')
    : 'no int8 plan was tried';
  return { candidate: best, reason: `${best.id}: the table's best, as no int8 plan is within the budget (${why})` };
}
