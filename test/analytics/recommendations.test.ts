/**
 * Recommendations from a deployment's record, by hand-computed figures: scale to zero from long idle
 * gaps, right-size from the busiest interval's concurrency; none where the deployment is scaled that way
 * already or the evidence is missing; ids stable across looks and read back to their deployment.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  deploymentOfRecommendation,
  PROPOSED_IDLE_MS,
  type PricedInterval,
  type RecommendationInput,
  recommend,
} from '../../lib/analytics/recommendations';
import { classifyUsage } from '../../lib/analytics/usagePattern';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 1);

/** A day of hourly intervals at $0.10 each, busy (600 requests at 50 ms p95) in hours 9–17, idle otherwise. */
function day(): { intervals: PricedInterval[]; counts: number[] } {
  const intervals: PricedInterval[] = [];
  const counts: number[] = [];
  for (let h = 0; h < 24; h++) {
    const busy = h >= 9 && h < 17;
    intervals.push({
      from: T0 + h * HOUR,
      to: T0 + (h + 1) * HOUR,
      replicaSeconds: 3 * 3600,
      allocatedUsd: 0.1,
      requests: busy ? 36_000 : 0,
      latencyP95Ms: busy ? 50 : null,
    });
    for (let m = 0; m < 60; m++) counts.push(busy ? 600 : 0);
  }
  return { intervals, counts };
}

function input(scaling: RecommendationInput['scaling']): RecommendationInput {
  const { intervals, counts } = day();
  return {
    deploymentId: 'mlp-v1.2',
    intervals,
    usage: classifyUsage({ start: T0, stepMs: MINUTE, counts }),
    scaling,
  };
}

test('a fixed count with long idle gaps: scale to zero and right-size, each with its saving', () => {
  const recs = recommend(input({ replicas: 3, autoscaling: null, scaleToZeroAfterMs: null }));
  assert.deepEqual(
    recs.map((r) => r.kind),
    ['right-size', 'scale-to-zero'],
    'largest saving first ($48.00 against $47.00)',
  );
  const [size, zero] = recs;
  // Idle 00:00–09:00 and 17:00–24:00: 16 h of gaps, each less the proposed 10 min; $2.40 a day → 30 days.
  const idleMs = 9 * HOUR - PROPOSED_IDLE_MS + (7 * HOUR - PROPOSED_IDLE_MS);
  assert.ok(
    Math.abs(zero!.monthlySavingUsd - 2.4 * (idleMs / (24 * HOUR)) * 30) < 1e-9,
    String(zero!.monthlySavingUsd),
  );
  assert.deepEqual(zero!.change, { scaleToZeroAfterMs: PROPOSED_IDLE_MS });
  // 10 requests/s × 0.05 s = 0.5 in flight; × 1.5 headroom → 1 replica of 3: two thirds of $2.40 a day.
  assert.deepEqual(size!.change, { autoscaling: { minReplicas: 1, maxReplicas: 3 } });
  assert.ok(Math.abs(size!.monthlySavingUsd - 2.4 * (2 / 3) * 30) < 1e-9, String(size!.monthlySavingUsd));
  assert.match(size!.evidence, /0\.50 request\(s\) in flight/);
  // The same record gives the same ids, and each names its deployment (which may hold dots).
  assert.deepEqual(
    recommend(input({ replicas: 3, autoscaling: null, scaleToZeroAfterMs: null })).map((r) => r.id),
    recs.map((r) => r.id),
  );
  for (const r of recs) assert.equal(deploymentOfRecommendation(r.id), 'mlp-v1.2');
  assert.equal(deploymentOfRecommendation('mlp-v1.bigger.0123abcd'), undefined);
});

test('nothing to recommend once scaled that way, or without a record', () => {
  assert.deepEqual(
    recommend(
      input({
        replicas: 1,
        autoscaling: { minReplicas: 1, maxReplicas: 3, targetInFlight: 1 },
        scaleToZeroAfterMs: 600_000,
      }),
    ),
    [],
  );
  const none = input({ replicas: 3, autoscaling: null, scaleToZeroAfterMs: null });
  assert.deepEqual(recommend({ ...none, intervals: [] }), []);
  // A busy fixed count needs its replicas: 3 replicas at 2 in flight each (×1.5 = 3) is right as it is.
  const busy = input({ replicas: 3, autoscaling: null, scaleToZeroAfterMs: 600_000 });
  busy.intervals = busy.intervals.map((i) => ({ ...i, requests: 72_000, latencyP95Ms: 100 }));
  assert.deepEqual(recommend(busy), []);
});
