/**
 * Scale to zero after an idle time (the deployment's own setting): the replicas stop, the next
 * request is held while one starts and is answered; a request held longer than the hold timeout gets
 * a 503 with Retry-After and a JSON error saying the deployment is waking; a request longer than the
 * idle time is not cut; an explicit hibernate (what the monitor workflow sends) agrees with it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalTarget } from '../../lib/targets/local';
import {
  assertAllDead,
  control,
  directOutput,
  eventually,
  gatewayMetrics,
  inferSlow,
  inferThrough,
  MLP_V1,
  modelDirWith,
  slowModelDir,
  startTestGateway,
} from './gatewayFixture';

describe('scale to zero', () => {
  test('idle → zero replicas; the next request is held, wakes one, and is answered; busy deployments stay up', {
    timeout: 80_000,
  }, async () => {
    const fx = await startTestGateway('scale-to-zero', { autoscaleTickMs: 50 });
    try {
      const target = new LocalTarget(fx.gateway.url);
      const modelDir = await modelDirWith(MLP_V1, fx.dir);
      const expected = await directOutput(MLP_V1);
      const applied = await target.apply({ id: 'idle', model: 'mlp', replicas: 1, modelDir, scaleToZeroAfterMs: 600 });
      assert.equal(applied.scaleToZeroAfterMs, 600);
      assert.equal(applied.spec.scaleToZeroAfterMs, 600);

      // Requests more often than the idle time keep it running.
      let lastRequest = 0;
      for (let i = 0; i < 8; i++) {
        await sleep(200);
        assert.equal((await inferThrough(applied.endpoint)).status, 200);
        lastRequest = performance.now();
        assert.equal((await target.status('idle')).state, 'running');
      }
      const pids = (await target.status('idle')).replicas.map((r) => r.pid);

      const zero = await eventually('scale to zero after 600 ms idle', async () => {
        const s = await target.status('idle');
        return s.state === 'hibernated' ? s : undefined;
      });
      assert.ok(performance.now() - lastRequest >= 600);
      assert.deepEqual(zero.replicas, []);
      assert.equal(zero.desiredReplicas, 1, 'what a wake starts');
      assert.deepEqual(
        zero.revisions.map((r) => r.desiredReplicas),
        [0],
      );
      assert.deepEqual(zero.scaleEvents.at(-1), {
        ...zero.scaleEvents.at(-1)!,
        revision: 'default',
        from: 1,
        to: 0,
        reason: 'idle',
      });
      await assertAllDead(pids, 'idle scale to zero');
      let m = await gatewayMetrics(fx.gateway.url);
      assert.equal(m.value('ferry_gateway_hibernated', { deployment: 'idle' }), 1);
      assert.equal(
        m.value('ferry_gateway_scale_events_total', {
          deployment: 'idle',
          revision: 'default',
          direction: 'down',
          reason: 'idle',
        }),
        1,
      );

      // The monitor workflow's hibernate of an already idle deployment agrees: no error, same state.
      assert.equal((await target.hibernate('idle')).state, 'hibernated');

      const held = await inferThrough(applied.endpoint);
      assert.equal(held.status, 200, JSON.stringify(held.json));
      assert.deepEqual(held.json.outputs[0].data, expected);
      assert.equal(held.revision, 'default');
      const woke = await target.status('idle');
      assert.equal(woke.state, 'running');
      assert.equal(woke.coldStarts, 1);
      assert.equal(typeof woke.lastWakeMs, 'number');
      assert.ok(woke.replicas.length === 1 && !pids.includes(woke.replicas[0].pid));
      m = await gatewayMetrics(fx.gateway.url);
      assert.equal(m.value('ferry_gateway_cold_starts_total', { deployment: 'idle' }), 1);
      assert.equal(m.value('ferry_gateway_wake_duration_seconds_count', { deployment: 'idle' }), 1);
      assert.ok(m.value('ferry_gateway_held_requests_total', { deployment: 'idle', revision: 'default' })! >= 1);
      assert.equal(m.value('ferry_gateway_hibernated', { deployment: 'idle' }), 0);

      // And again: it goes back to zero when idle.
      await eventually('a second scale to zero', async () => (await target.status('idle')).state === 'hibernated');
      assert.equal((await target.status('idle')).coldStarts, 1);
    } finally {
      await fx.cleanup();
    }
  });

  test('a request longer than the idle time is not cut: in-flight requests keep the deployment up', {
    timeout: 60_000,
  }, async () => {
    const fx = await startTestGateway('scale-to-zero-busy', { autoscaleTickMs: 50 });
    try {
      const modelDir = await slowModelDir(fx.dir, 'slow', 256);
      const put = await control(fx.gateway.url, 'PUT', '/deployments/busy', {
        model: 'slow',
        modelDir,
        replicas: 1,
        scaleToZeroAfterMs: 200,
      });
      assert.equal(put.status, 200, JSON.stringify(put.json));
      // One request that takes longer than the idle time.
      const started = performance.now();
      const long = inferSlow(put.json.endpoint, 40_000);
      const states: string[] = [];
      const watcher = (async () => {
        while (performance.now() - started < 400) {
          states.push((await control(fx.gateway.url, 'GET', '/deployments/busy')).json.state);
          await sleep(50);
        }
      })();
      const res = await long;
      await watcher;
      const tookMs = performance.now() - started;
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.ok(tookMs > 200, `the request took longer than the idle time (${Math.round(tookMs)} ms)`);
      assert.deepEqual([...new Set(states)], ['running'], 'not scaled to zero while a request was in flight');
      await eventually(
        'idle after the request',
        async () => (await control(fx.gateway.url, 'GET', '/deployments/busy')).json.state === 'hibernated',
      );
    } finally {
      await fx.cleanup();
    }
  });

  test('a request held longer than the hold timeout: 503, Retry-After, JSON saying it is waking; the wake completes', {
    timeout: 60_000,
  }, async () => {
    const fx = await startTestGateway('scale-to-zero-hold', { autoscaleTickMs: 50, holdTimeoutMs: 40 });
    try {
      const modelDir = await modelDirWith(MLP_V1, fx.dir);
      const put = await control(fx.gateway.url, 'PUT', '/deployments/sleepy', {
        model: 'mlp',
        modelDir,
        replicas: 1,
        scaleToZeroAfterMs: 300,
      });
      assert.equal(put.status, 200);
      await eventually(
        'scale to zero',
        async () => (await control(fx.gateway.url, 'GET', '/deployments/sleepy')).json.state === 'hibernated',
      );

      const res = await inferThrough(put.json.endpoint);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.match(res.json.error, /deployment "sleepy" is waking up and was not ready within 40 ms; retry shortly/);
      assert.equal(res.json.state, 'waking');
      assert.equal(res.json.deployment, 'sleepy');
      assert.equal(res.json.retryAfterSeconds, 1);
      const m = await gatewayMetrics(fx.gateway.url);
      assert.equal(m.value('ferry_gateway_unavailable_total', { deployment: 'sleepy', reason: 'hold_timeout' }), 1);
      assert.equal(
        m.value('ferry_gateway_requests_total', { deployment: 'sleepy', revision: 'default', code: '503' }),
        1,
      );

      await eventually(
        'the wake to finish',
        async () => (await control(fx.gateway.url, 'GET', '/deployments/sleepy')).json.state === 'running',
      );
      const retried = await inferThrough(put.json.endpoint);
      assert.equal(retried.status, 200);
    } finally {
      await fx.cleanup();
    }
  });

  test('a replica floor wakes a hibernated deployment, holds off scale to zero while it lasts, then lapses', {
    timeout: 80_000,
  }, async () => {
    const fx = await startTestGateway('replica-floor', { autoscaleTickMs: 50 });
    try {
      const target = new LocalTarget(fx.gateway.url);
      const modelDir = await modelDirWith(MLP_V1, fx.dir);
      await target.apply({
        id: 'floored',
        model: 'mlp',
        replicas: 1,
        modelDir,
        scaleToZeroAfterMs: 500,
        autoscaling: { minReplicas: 1, maxReplicas: 3, scaleDownDelayMs: 300 },
      });
      await eventually('scale to zero', async () => (await target.status('floored')).state === 'hibernated');

      // No request: the floor alone wakes it, to the floor's count.
      const leaseMs = 3000;
      const set = await target.setReplicaFloor('floored', { replicas: 2, ttlMs: leaseMs });
      const setAt = Date.now();
      assert.notEqual(set.state, 'hibernated', 'the floor started a wake');
      await eventually('two ready replicas', async () => {
        const s = await target.status('floored');
        return s.state === 'running' && s.replicas.filter((r) => r.ready).length === 2;
      });
      // Idle far past scaleToZeroAfterMs, yet up while the lease holds.
      while (Date.now() - setAt < leaseMs - 300) {
        const s = await target.status('floored');
        assert.equal(s.state, 'running', `scaled to zero ${Date.now() - setAt} ms into a ${leaseMs} ms floor`);
        assert.equal(s.desiredReplicas >= 1, true);
        await sleep(100);
      }
      // Not renewed: it lapses, and scale to zero takes over again.
      await eventually(
        'scale to zero after the lease',
        async () => (await target.status('floored')).state === 'hibernated',
      );
      assert.ok(Date.now() - setAt >= leaseMs, 'not before the lease ended');
      assert.equal((await target.status('floored')).coldStarts, 0, 'no request met a cold start');

      // 0 clears a floor; an unknown deployment or a bad body is refused by name.
      assert.equal((await target.setReplicaFloor('floored', { replicas: 0, ttlMs: 1000 })).state, 'hibernated');
      const unknown = await control(fx.gateway.url, 'PUT', '/deployments/nope/floor', { replicas: 1, ttlMs: 1000 });
      assert.equal(unknown.status, 404);
      const bad = await control(fx.gateway.url, 'PUT', '/deployments/floored/floor', { replicas: 1 });
      assert.equal(bad.status, 400);
      assert.match(JSON.stringify(bad.json), /ttlMs/);
    } finally {
      await fx.cleanup();
    }
  });
});
