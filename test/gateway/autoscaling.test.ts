/**
 * Concurrency autoscaling with real replicas: concurrent inference load scales a deployment up (panic
 * mode, within a few seconds), and after the load the count comes back down only after the
 * scale-down delay, draining what it removes, with no failed request; decisions show in /metrics and
 * in the status. Short windows so the test runs in seconds.
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
  slowModelDir,
  startLoad,
  startTestGateway,
} from './gatewayFixture';

let fx: GatewayFixture;
before(async () => {
  fx = await startTestGateway('autoscaling', { autoscaleTickMs: 50 });
});
after(() => fx.cleanup());

test('concurrent load scales up quickly; the count comes back down after the scale-down delay', {
  timeout: 80_000,
}, async () => {
  const modelDir = await slowModelDir(fx.dir);
  const autoscaling = {
    targetInFlight: 1,
    minReplicas: 1,
    maxReplicas: 3,
    stableWindowMs: 1000,
    panicWindowMs: 200,
    scaleDownDelayMs: 1500,
  };
  const put = await control(fx.gateway.url, 'PUT', '/deployments/auto', { model: 'slow', modelDir, autoscaling });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.deepEqual(put.json.autoscaling, { ...autoscaling, panicThreshold: 2 });
  assert.equal(put.json.desiredReplicas, 1);
  assert.equal(put.json.replicas.length, 1);
  const endpoint = put.json.endpoint;
  const firstPid = put.json.replicas[0].pid;

  // 6 clients, each request ~35 ms of onnxruntime alone: about 6 in flight against a target of 1.
  const load = startLoad(6, () => inferSlow(endpoint, 2000));
  const loadStarted = performance.now();
  const scaledUp = await eventually(
    '3 ready replicas under load',
    async () => {
      const s = (await control(fx.gateway.url, 'GET', '/deployments/auto')).json;
      return s.revisions[0].readyReplicas === 3 ? s : undefined;
    },
    30_000,
  );
  const scaleUpMs = performance.now() - loadStarted;
  const during = await gatewayMetrics(fx.gateway.url);
  const outcomesUp = [...load.outcomes];
  await sleep(300); // the new replicas take part in serving
  const underLoad = (await control(fx.gateway.url, 'GET', '/deployments/auto')).json;
  const outcomes = await load.stop();
  const loadStopped = performance.now();

  assert.ok(outcomes.length >= 12, `enough requests: ${outcomes.length}`);
  console.log(`scale-up ${Math.round(scaleUpMs)} ms, ${outcomes.length} requests`);
  assert.deepEqual([...new Set(outcomes.map((o) => o.status))], [200], 'no request failed while scaling up');
  const up = scaledUp.scaleEvents.filter((e: any) => e.to > e.from);
  assert.ok(
    up.length >= 1 && up.some((e: any) => e.reason === 'panic'),
    `a panic scale-up: ${JSON.stringify(scaledUp.scaleEvents)}`,
  );
  assert.equal(scaledUp.desiredReplicas, 3);
  assert.ok(scaleUpMs < 20_000, `scaled up in ${Math.round(scaleUpMs)} ms`);
  assert.equal(during.value('ferry_gateway_desired_replicas', { deployment: 'auto', revision: 'default' }), 3);
  assert.equal(during.value('ferry_gateway_ready_replicas', { deployment: 'auto', revision: 'default' }), 3);
  assert.ok(
    (during.value('ferry_gateway_scale_events_total', {
      deployment: 'auto',
      revision: 'default',
      direction: 'up',
      reason: 'panic',
    }) ?? 0) >= 1,
  );
  assert.ok(
    (during.value('ferry_gateway_autoscaler_observed_concurrency', {
      deployment: 'auto',
      revision: 'default',
      window: 'panic',
    }) ?? 0) > 1,
  );
  assert.ok(during.value('ferry_gateway_in_flight_requests', { deployment: 'auto', revision: 'default' })! >= 1);
  const served = new Set(outcomes.slice(outcomesUp.length).map((o) => o.replica));
  assert.ok(served.size >= 2, `after the scale-up, requests went to several replicas: ${[...served].join(', ')}`);
  assert.equal(underLoad.revisions[0].autoscaler.panic, true);

  // After the load: the stable average falls within ~1 s, then the lower count must be wanted for 1.5 s.
  const scaledDown = await eventually(
    'back to 1 replica',
    async () => {
      const s = (await control(fx.gateway.url, 'GET', '/deployments/auto')).json;
      return s.desiredReplicas === 1 && s.replicas.length === 1 ? s : undefined;
    },
    30_000,
  );
  const downMs = performance.now() - loadStopped;
  assert.ok(downMs >= 1500, `the scale-down waited for the delay: ${Math.round(downMs)} ms`);
  const down = scaledDown.scaleEvents.filter((e: any) => e.to < e.from);
  assert.ok(down.length >= 1 && down.every((e: any) => e.reason === 'stable'), JSON.stringify(scaledDown.scaleEvents));
  const removed = scaledUp.replicas.map((r: any) => r.pid).filter((p: number) => p !== scaledDown.replicas[0].pid);
  await assertAllDead(removed, 'replicas removed by the scale-down');
  const afterDown = await gatewayMetrics(fx.gateway.url);
  assert.ok(
    (afterDown.value('ferry_gateway_scale_events_total', {
      deployment: 'auto',
      revision: 'default',
      direction: 'down',
      reason: 'stable',
    }) ?? 0) >= 1,
  );
  assert.equal(afterDown.value('ferry_gateway_desired_replicas', { deployment: 'auto', revision: 'default' }), 1);
  assert.equal((await inferSlow(endpoint, 10)).status, 200);
  assert.ok(typeof firstPid === 'number');
});
