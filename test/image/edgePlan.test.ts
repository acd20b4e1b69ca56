/** The plan an edge image serves: int8 when the table has one within the budget, else the table's best. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseEdgePlan } from '../../lib/image/edgePlan';
import type { OptimizationCandidate, OptimizationTable } from '../../lib/optimize/types';

function candidate(
  id: string,
  techniques: string[],
  cost: number,
  within = true,
  rejection?: string,
): OptimizationCandidate {
  return {
    id,
    title: id,
    techniques,
    state: 'measured',
    withinBudget: within,
    ...(rejection ? { rejection } : {}),
    notes: [],
    row: { costPerMillionUsd: cost } as OptimizationCandidate['row'],
  };
}

function table(candidates: OptimizationCandidate[], best: string): OptimizationTable {
  return { candidates, best } as OptimizationTable;
}

test('the cheapest int8 plan within the budget, even when another plan is the table best', () => {
  const t = table(
    [
      candidate('original', [], 10),
      candidate('graph-optimize', ['graph-optimize'], 5),
      candidate('int8-dynamic', ['int8-dynamic'], 7),
      candidate('int8-static', ['int8-static'], 6),
      candidate('int8-dynamic+tuned', ['int8-dynamic', 'session-tuning'], 8),
    ],
    'graph-optimize',
  );
  const choice = chooseEdgePlan(t);
  assert.equal(choice.candidate.id, 'int8-static');
  assert.match(choice.reason, /int8 plan within the accuracy budget/);
});

test('no int8 plan within the budget: the table best, saying why int8 was not taken', () => {
  const t = table(
    [
      candidate('original', [], 10),
      candidate('fp16-weights', ['fp16-weights'], 9),
      candidate('int8-dynamic', ['int8-dynamic'], 3, false, 'cosine 0.91 < 0.99'),
      {
        ...candidate('int8-static', ['int8-static'], 0),
        state: 'not-applicable',
        withinBudget: false,
        reason: 'no calibration data',
      },
    ],
    'fp16-weights',
  );
  const choice = chooseEdgePlan(t);
  assert.equal(choice.candidate.id, 'fp16-weights');
  assert.match(choice.reason, /int8-dynamic cosine 0\.91 < 0\.99; int8-static no calibration data/);
  assert.throws(() => chooseEdgePlan(table([candidate('original', [], 1)], 'gone')), /no such candidate/);
});
