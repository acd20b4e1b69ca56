/**
 * The autoscaler's decisions and the traffic router's choices, driven with explicit time and a
 * seeded random source (both are pure: no processes needed to check the arithmetic).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConcurrencyAutoscaler, normalizeAutoscaling } from '../../lib/gateway/autoscaler';
import { normalizeTrafficPolicy, TrafficRouter } from '../../lib/gateway/trafficPolicy';

const settings = normalizeAutoscaling(
  {
    targetInFlight: 2,
    minReplicas: 1,
    maxReplicas: 10,
    stableWindowMs: 10_000,
    panicWindowMs: 1000,
    panicThreshold: 2,
    scaleDownDelayMs: 5000,
  },
  1,
);

/** Runs the autoscaler at 100 ms ticks from `from` to `to` (ms) and returns the last decision. */
function run(a: ConcurrencyAutoscaler, state: { desired: number; ready: number }, from: number, to: number) {
  let last: ReturnType<ConcurrencyAutoscaler['decide']> | undefined;
  for (let t = from; t <= to; t += 100) {
    last = a.decide(t, state.ready, state.desired);
    state.desired = last.desired;
    state.ready = last.desired; // replicas start instantly here
  }
  return last!;
}

describe('ConcurrencyAutoscaler', () => {
  test('stable load: desired = ceil(average concurrency / target), no panic', () => {
    const a = new ConcurrencyAutoscaler(settings, 0);
    const state = { desired: 1, ready: 1 };
    a.setConcurrency(1.5, 0); // below the panic threshold of 2 × 1 replica × 2 target
    let d = run(a, state, 0, 20_000);
    assert.equal(d.panic, false);
    assert.equal(d.desired, 1);
    a.setConcurrency(5, 20_000);
    d = run(a, state, 20_100, 40_000);
    assert.ok(Math.abs(d.stableConcurrency - 5) < 1e-6, String(d.stableConcurrency));
    assert.equal(d.desired, 3); // ceil(5 / 2)
  });

  test('a burst starts panic mode: it scales on the panic window at once and never down while panicking', () => {
    const a = new ConcurrencyAutoscaler(settings, 0);
    const state = { desired: 1, ready: 1 };
    run(a, state, 0, 10_000);
    a.setConcurrency(16, 10_000);
    // One panic window later the stable average has barely moved, but the panic window sees 16.
    const d = run(a, state, 10_100, 11_000);
    assert.equal(d.panic, true);
    assert.equal(d.desired, 8); // ceil(16 / 2), within a second of the burst
    assert.ok(d.stableConcurrency < 2, `the stable window alone would not have scaled yet: ${d.stableConcurrency}`);
    // The burst ends: still panicking (a whole stable window must pass), so no scale-down.
    a.setConcurrency(0, 11_000);
    assert.equal(run(a, state, 11_100, 15_000).desired, 8);
  });

  test('scale-down waits for the delay; scale-up does not', () => {
    const a = new ConcurrencyAutoscaler({ ...settings, panicThreshold: 10 }, 0);
    const state = { desired: 1, ready: 1 };
    a.setConcurrency(8, 0);
    assert.equal(run(a, state, 0, 10_000).desired, 4);
    a.setConcurrency(0, 10_000);
    // The stable average falls over the next 10 s; each lower count is applied 5 s after it was first wanted.
    let firstBelow4 = -1;
    for (let t = 10_100; t <= 40_000; t += 100) {
      const d = a.decide(t, state.ready, state.desired);
      state.desired = d.desired;
      if (d.desired < 4 && firstBelow4 === -1) firstBelow4 = t;
    }
    // ceil(avg/2) drops to 3 once avg ≤ 6, i.e. 2.5 s after the drop; plus the 5 s delay.
    assert.ok(
      firstBelow4 >= 10_000 + 2500 + 5000 - 100 && firstBelow4 <= 10_000 + 2500 + 5000 + 200,
      `first scale-down at ${firstBelow4}`,
    );
    assert.equal(state.desired, 1, 'back to minReplicas');
  });

  test('min and max bound the count', () => {
    const a = new ConcurrencyAutoscaler({ ...settings, minReplicas: 2, maxReplicas: 3 }, 0);
    const state = { desired: 2, ready: 2 };
    assert.equal(run(a, state, 0, 5000).desired, 2);
    a.setConcurrency(100, 5000);
    assert.equal(run(a, state, 5100, 20_000).desired, 3);
  });

  test('a floor holds the count up (capped at max) and, once gone, leaves after the scale-down delay', () => {
    const a = new ConcurrencyAutoscaler({ ...settings, panicThreshold: 10 }, 0);
    const state = { desired: 1, ready: 1 };
    assert.equal(run(a, state, 0, 2000).desired, 1, 'no load: minReplicas');
    const held = a.decide(2100, 1, 1, 3);
    assert.deepEqual([held.desired, held.reason], [3, 'floor']);
    assert.equal(a.decide(2200, 3, 3, 50).desired, 10, 'a floor above maxReplicas is capped there');
    // Load above the floor wins over it.
    a.setConcurrency(16, 2200);
    let d = held;
    for (let t = 2300; t <= 14_000; t += 100) d = a.decide(t, d.desired, d.desired, 3);
    assert.deepEqual([d.desired, d.reason], [8, 'stable']);
    // The floor goes with the load: the count falls only after the 5 s scale-down delay.
    a.setConcurrency(0, 14_000);
    for (let t = 14_100; t <= 60_000; t += 100) {
      d = a.decide(t, d.desired, d.desired);
      if (t < 14_000 + 5000) assert.ok(d.desired >= 8, `at ${t} the count fell to ${d.desired} before the delay`);
    }
    assert.equal(d.desired, 1, 'back to minReplicas');
  });

  test('settings: defaults and refusals', () => {
    assert.deepEqual(normalizeAutoscaling({}, 2), {
      targetInFlight: 1,
      minReplicas: 1,
      maxReplicas: 4,
      stableWindowMs: 60_000,
      panicWindowMs: 6000,
      panicThreshold: 2,
      scaleDownDelayMs: 30_000,
    });
    assert.throws(
      () => normalizeAutoscaling({ minReplicas: 0 }, 1),
      /"autoscaling.minReplicas" must be an integer from 1 to 64 \(scale to zero is "scaleToZeroAfterMs"\)/,
    );
    assert.throws(
      () => normalizeAutoscaling({ minReplicas: 3, maxReplicas: 2 }, 1),
      /"autoscaling.maxReplicas" must be an integer from minReplicas \(3\)/,
    );
    assert.throws(() => normalizeAutoscaling({ targetInflight: 2 }, 1), /unknown field "targetInflight"/);
    assert.throws(
      () => normalizeAutoscaling({ panicWindowMs: 5000, stableWindowMs: 1000 }, 1),
      /panicWindowMs" must be from 50 ms to stableWindowMs/,
    );
  });
});

describe('TrafficRouter', () => {
  /** A deterministic stand-in for Math.random: evenly spread points in [0, 1). */
  const evenly = (n: number) => {
    let i = 0;
    return () => (i++ % n) / n + 0.5 / n;
  };

  test('percent split: exactly the shares over evenly spread points', () => {
    const policy = normalizeTrafficPolicy({ split: { a: 90, b: 10 } }, ['a', 'b']);
    const router = new TrafficRouter(policy, ['a', 'b'], evenly(1000));
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 1000; i++) counts[router.choose({})]++;
    assert.deepEqual(counts, { a: 900, b: 100 });
  });

  test('x-ferry-variant, then rules, then the split', () => {
    const policy = normalizeTrafficPolicy(
      { split: { a: 100 }, rules: [{ header: 'X-Group', value: 'beta', revision: 'b' }] },
      ['a', 'b'],
    );
    const router = new TrafficRouter(policy, ['a', 'b']);
    assert.equal(router.choose({}), 'a');
    assert.equal(router.choose({ 'x-group': 'beta' }), 'b');
    assert.equal(router.choose({ 'x-group': 'gamma' }), 'a');
    assert.equal(router.choose({ 'x-ferry-variant': 'b' }), 'b');
    assert.equal(router.choose({ 'x-ferry-variant': 'a', 'x-group': 'beta' }), 'a');
    assert.equal(router.choose({ 'x-ferry-variant': 'zzz' }), 'a');
  });

  test('defaults: everything to the first revision; zero shares are dropped', () => {
    assert.deepEqual(normalizeTrafficPolicy(undefined, ['x', 'y']), { split: { x: 100 }, rules: [] });
    assert.deepEqual(normalizeTrafficPolicy({ split: { x: 0, y: 100 } }, ['x', 'y']).split, { y: 100 });
  });
});
