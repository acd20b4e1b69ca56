/**
 * Draining: a replica taken out of routing (scale-down, hibernate) first finishes the requests it
 * holds, then gets SIGTERM. The requests are made slow by the model itself (a MatMul chain over as
 * many rows as the client asks for), not by sleeping anywhere.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertAllDead,
  control,
  eventually,
  type GatewayFixture,
  gatewayMetrics,
  inferSlow,
  isAlive,
  slowModelDir,
  startTestGateway,
} from './gatewayFixture';

let fx: GatewayFixture;
let endpoint: string;
before(async () => {
  fx = await startTestGateway('drain', { drainTimeoutMs: 20_000 });
  const modelDir = await slowModelDir(fx.dir);
  const put = await control(fx.gateway.url, 'PUT', '/deployments/drain', { model: 'slow', modelDir, replicas: 2 });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  endpoint = put.json.endpoint;
});
after(() => fx.cleanup());

/** Rows that keep onnxruntime busy for ~1 s or more here. */
const LONG = 60_000;

async function inFlightByPid(): Promise<Map<number, number>> {
  const s = (await control(fx.gateway.url, 'GET', '/deployments/drain')).json;
  return new Map(s.replicas.map((r: any) => [r.pid, r.inFlight]));
}

test('scale-down: the removed replica finishes its in-flight request before it is stopped', {
  timeout: 60_000,
}, async () => {
  // Two long requests: the least-loaded routing puts one on each replica.
  const requests = [inferSlow(endpoint, LONG), inferSlow(endpoint, LONG)];
  const busy = await eventually('both replicas busy', async () => {
    const m = await inFlightByPid();
    return m.size === 2 && [...m.values()].every((n) => n === 1) ? m : undefined;
  });
  const pids = [...busy.keys()];

  const scaledSent = performance.now();
  const scaled = control(fx.gateway.url, 'PUT', '/deployments/drain', {
    model: 'slow',
    modelDir: (await control(fx.gateway.url, 'GET', '/deployments/drain')).json.modelDir,
    replicas: 1,
  });
  // While the PUT waits for the drain: one replica is out of routing but alive and still working.
  const draining = await eventually('a draining replica', async () => {
    const m = await gatewayMetrics(fx.gateway.url);
    return m.value('ferry_gateway_draining_replicas', { deployment: 'drain', revision: 'default' }) === 1
      ? m
      : undefined;
  });
  assert.ok(draining);
  const routed = await inFlightByPid();
  assert.equal(routed.size, 1, 'the draining replica is no longer listed (nor routed to)');
  const drainingPid = pids.find((p) => !routed.has(p))!;
  assert.ok(isAlive(drainingPid), 'the draining replica is still running its request');

  const results = await Promise.all(requests);
  const finishedAt = performance.now();
  assert.deepEqual(
    results.map((r) => r.status),
    [200, 200],
    JSON.stringify(results.map((r) => r.json)).slice(0, 300),
  );
  assert.ok(
    results.some((r) => Number(r.replica) === drainingPid),
    'one of them was served by the drained replica',
  );
  const put = await scaled;
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.ok(performance.now() >= finishedAt && finishedAt > scaledSent);
  await assertAllDead([drainingPid], 'the drained replica');
  assert.deepEqual(
    put.json.replicas.map((r: any) => r.pid),
    pids.filter((p) => p !== drainingPid),
  );
});

test('hibernate waits for the in-flight request, answers it, then stops the replica', { timeout: 60_000 }, async () => {
  const s = (await control(fx.gateway.url, 'GET', '/deployments/drain')).json;
  const pid = s.replicas[0].pid;
  const request = inferSlow(endpoint, LONG);
  await eventually('the request in flight', async () => (await inFlightByPid()).get(pid) === 1);
  let requestDoneAt = 0;
  void request.then(() => (requestDoneAt = performance.now()));
  const hib = await control(fx.gateway.url, 'POST', '/deployments/drain/hibernate');
  const hibernatedAt = performance.now();
  assert.equal(hib.status, 200);
  assert.equal(hib.json.state, 'hibernated');
  const res = await request;
  assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  assert.equal(Number(res.replica), pid);
  assert.ok(
    requestDoneAt > 0 && requestDoneAt <= hibernatedAt + 5,
    'the hibernate answered after the request finished',
  );
  await assertAllDead([pid], 'hibernate');
  await sleep(10);
});
