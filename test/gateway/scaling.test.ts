/**
 * PUT /_ferry/deployments/{id}/scaling: replica counts, autoscaling and idle time change without a
 * replica restart and without touching the model or the traffic; autoscaling settings merge over the
 * current ones; a lower minimum drains replicas only after the scale-down delay (not at once); a
 * hibernated deployment stays hibernated; bad changes are refused with the reason and change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  control,
  eventually,
  type GatewayFixture,
  inferThrough,
  isAlive,
  MLP_V1,
  modelDirWith,
  startTestGateway,
} from './gatewayFixture';

let fx: GatewayFixture;
let modelDir: string;
before(async () => {
  fx = await startTestGateway('scaling', { autoscaleTickMs: 50 });
  modelDir = await modelDirWith(MLP_V1, fx.dir);
});
after(() => fx.cleanup());

const get = async (id: string) => (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
const pids = (s: any) => s.replicas.map((r: any) => r.pid).sort();

test('autoscaling on, then a lower minimum: same replicas keep serving; the extra one leaves only after the scale-down delay', {
  timeout: 60_000,
}, async () => {
  const put = await control(fx.gateway.url, 'PUT', '/deployments/sc', {
    model: 'mlp',
    modelDir,
    replicas: 1,
    scaleToZeroAfterMs: 600_000,
  });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  const firstPid = put.json.replicas[0].pid;

  const on = await control(fx.gateway.url, 'PUT', '/deployments/sc/scaling', {
    autoscaling: { minReplicas: 2, maxReplicas: 3, scaleDownDelayMs: 1500 },
  });
  assert.equal(on.status, 200, JSON.stringify(on.json));
  assert.equal(on.json.autoscaling.minReplicas, 2);
  assert.equal(on.json.autoscaling.maxReplicas, 3);
  assert.equal(on.json.revisions[0].readyReplicas, 2);
  assert.ok(pids(on.json).includes(firstPid) && isAlive(firstPid), 'the running replica was kept');
  assert.equal(on.json.spec.modelDir, modelDir, 'the model is untouched');
  assert.equal(on.json.scaleToZeroAfterMs, 600_000, 'fields not given keep their values');
  const served = new Set<string | null>();
  for (let i = 0; i < 12; i++) served.add((await inferThrough(on.json.endpoint)).replica);
  assert.ok(served.has(String(firstPid)), `the first replica still serves: ${[...served].join(', ')}`);

  // Only the minimum changes: the rest of the settings are kept. With no load the autoscaler wants 1,
  // but a lower count must be wanted for the scale-down delay first.
  const loweredAt = performance.now();
  const lower = await control(fx.gateway.url, 'PUT', '/deployments/sc/scaling', { autoscaling: { minReplicas: 1 } });
  assert.equal(lower.status, 200, JSON.stringify(lower.json));
  assert.deepEqual(
    [lower.json.autoscaling.minReplicas, lower.json.autoscaling.maxReplicas, lower.json.autoscaling.scaleDownDelayMs],
    [1, 3, 1500],
  );
  assert.deepEqual(pids(lower.json), pids(on.json));
  await sleep(700); // many autoscaler ticks
  const held = await get('sc');
  assert.equal(held.revisions[0].desiredReplicas, 2, `still 2 within the delay: ${JSON.stringify(held.scaleEvents)}`);
  assert.deepEqual(pids(held), pids(on.json));
  const down = await eventually('the scale-down after the delay', async () => {
    const s = await get('sc');
    return s.replicas.length === 1 ? s : undefined;
  });
  assert.ok(performance.now() - loweredAt >= 1500, 'not before the delay');
  assert.deepEqual(pids(down), [firstPid], 'the oldest replica stays');
  assert.equal(down.scaleEvents.at(-1).reason, 'stable');
});

test('bad scaling changes are refused with the reason; nothing changes', async () => {
  const before = await get('sc');
  const bad = async (body: unknown, pattern: RegExp) => {
    const res = await control(fx.gateway.url, 'PUT', '/deployments/sc/scaling', body);
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.match(res.json.error, pattern);
  };
  await bad({}, /nothing to change/);
  await bad({ replicas: 0 }, /"replicas" must be an integer from 1 to 64/);
  await bad({ autoscaling: { maxReplicas: 0 } }, /"autoscaling.maxReplicas" must be an integer from minReplicas \(1\)/);
  await bad({ autoscaling: [] }, /"autoscaling" must be an object, or null/);
  await bad({ scaleToZeroAfterMs: 5 }, /"scaleToZeroAfterMs" must be a number of milliseconds ≥ 100/);
  await bad({ replicas: 2, model: 'other' }, /unknown field "model"/);
  assert.equal((await control(fx.gateway.url, 'PUT', '/deployments/nope/scaling', { replicas: 1 })).status, 404);
  assert.equal((await control(fx.gateway.url, 'GET', '/deployments/sc/scaling')).status, 405);
  const now = await get('sc');
  assert.deepEqual(
    [now.autoscaling, now.scaleToZeroAfterMs, pids(now)],
    [before.autoscaling, before.scaleToZeroAfterMs, pids(before)],
  );
});

test('a hibernated deployment stays hibernated through a scaling change and wakes with the new counts', async () => {
  assert.equal((await control(fx.gateway.url, 'POST', '/deployments/sc/hibernate')).status, 200);
  const changed = await control(fx.gateway.url, 'PUT', '/deployments/sc/scaling', {
    replicas: 2,
    autoscaling: null,
    scaleToZeroAfterMs: null,
  });
  assert.equal(changed.status, 200, JSON.stringify(changed.json));
  assert.equal(changed.json.state, 'hibernated');
  assert.deepEqual(changed.json.replicas, []);
  assert.equal(changed.json.desiredReplicas, 2, 'what a wake starts');
  assert.equal(changed.json.autoscaling, null);
  assert.equal(changed.json.scaleToZeroAfterMs, null);
  const woke = await control(fx.gateway.url, 'POST', '/deployments/sc/wake');
  assert.equal(woke.json.state, 'running');
  assert.equal(woke.json.replicas.length, 2);
});
