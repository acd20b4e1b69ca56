/** The discrete-event replay agrees with the closed-form queueing figures, and feels interruptions and cold starts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolP95 } from '../../lib/cost/engine/queueing';
import { replayFleet, replayServerless } from '../../lib/cost/engine/replay';
import { seededUniform } from '../../lib/seededRandom';

const service = { meanMs: 10, p50Ms: 9, p95Ms: 14 };
const hour = (rps: number) => new Array(60).fill(rps);
const tenMinutes = (rps: number) => new Array(10).fill(rps);

test('ten steady minutes through 3 servers: the Erlang C figure is an upper bound of the replay', () => {
  // M/M/c takes the service time as exponential; the measured one varies less, so it waits less.
  const schedule = { serversPerInstance: 1, onDemand: [3] };
  const r = replayFleet({ rates: tenMinutes(200), service, schedule, sloMs: 50, random: seededUniform(3) });
  const model = poolP95(service, 3, 0.2);
  assert.ok(r.requests > 115_000 && r.requests < 125_000, `${r.requests}`);
  assert.ok(r.p95Ms <= model && r.p95Ms > service.p95Ms, `replay ${r.p95Ms} vs model ${model}`);
  // With exponential service times (p50 = mean·ln2, p95 = mean·ln20) the two agree.
  const exp = { meanMs: 10, p50Ms: 10 * Math.LN2, p95Ms: 10 * Math.log(20) };
  const re = replayFleet({ rates: tenMinutes(200), service: exp, schedule, sloMs: 50, random: seededUniform(3) });
  const me = poolP95(exp, 3, 0.2);
  assert.ok(Math.abs(re.p95Ms - me) / me < 0.1, `replay ${re.p95Ms} vs model ${me}`);
});

test('an interruption without overprovisioning hurts; the same day is deterministic', () => {
  const schedule = { serversPerInstance: 1, onDemand: [1], spot: [2] };
  const interruptions = [{ atMs: 2 * 60_000, instances: 1 }];
  const a = replayFleet({
    rates: tenMinutes(150),
    service,
    schedule,
    sloMs: 40,
    random: seededUniform(5),
    interruptions,
  });
  const b = replayFleet({
    rates: tenMinutes(150),
    service,
    schedule,
    sloMs: 40,
    random: seededUniform(5),
    interruptions,
  });
  const calm = replayFleet({ rates: tenMinutes(150), service, schedule, sloMs: 40, random: seededUniform(5) });
  assert.deepEqual(a, b);
  assert.ok(a.withinSloShare < calm.withinSloShare, `${a.withinSloShare} vs ${calm.withinSloShare}`);
});

test('serverless: the first request after a long idle gap starts cold, a busy stream stays warm', () => {
  const rates = [...hour(0), ...hour(5).slice(0, 1), ...hour(0)];
  const r = replayServerless({
    rates,
    service,
    coldStartMs: 800,
    keepWarmMs: 60_000,
    sloMs: 50,
    random: seededUniform(9),
  });
  // Requests arriving during the first cold start need instances of their own: a few cold starts, then warm.
  assert.ok(r.coldStarts >= 1 && r.coldStarts <= 10, `${r.coldStarts}`);
  const busy = replayServerless({
    rates: hour(20),
    service,
    coldStartMs: 800,
    keepWarmMs: 600_000,
    sloMs: 50,
    random: seededUniform(9),
  });
  assert.ok(busy.coldStarts / busy.requests < 0.001);
  assert.ok(busy.withinSloShare > 0.99);
});
