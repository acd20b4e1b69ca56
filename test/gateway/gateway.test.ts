/**
 * The gateway as the local deployment target: real replica processes (runtime/server/main.ts via
 * tsx), real HTTP on 127.0.0.1, real onnxruntime.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway } from '../../lib/gateway';
import { readProcStartTicks } from '../../lib/gateway/replicaProcess';
import {
  assertAllDead,
  control,
  directOutput,
  eventually,
  type GatewayFixture,
  inferThrough,
  isAlive,
  MLP_V1,
  MLP_V2,
  modelDirWith,
  startTestGateway,
} from './gatewayFixture';

describe('gateway: deploy, route, hibernate, wake, supervise, delete', () => {
  let fx: GatewayFixture;
  let modelDir: string;
  let expected: number[];
  const id = 'mlp-test';

  before(async () => {
    fx = await startTestGateway('gateway');
    modelDir = await modelDirWith(MLP_V1, fx.dir);
    expected = await directOutput(MLP_V1);
  });
  after(() => fx.cleanup());

  test('PUT starts the replicas and the endpoint serves what onnxruntime computes', async () => {
    const res = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, { modelDir, replicas: 2, model: 'mlp' });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const status = res.json;
    assert.equal(status.id, id);
    assert.equal(status.state, 'running');
    assert.equal(status.endpoint, `${fx.gateway.url}/d/${id}`);
    assert.equal(status.replicas.length, 2);
    for (const r of status.replicas) {
      assert.ok(isAlive(r.pid), `replica ${r.pid} runs`);
      assert.equal(r.ready, true);
      assert.ok(Number.isInteger(r.port) && typeof r.startedAt === 'string'); // port 0: the replica listens on a Unix domain socket
    }

    const first = await inferThrough(status.endpoint);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.deepEqual(first.json.outputs[0].data, expected);
    // Round-robin: the next request goes to the other replica.
    const second = await inferThrough(status.endpoint);
    assert.equal(second.status, 200);
    assert.notEqual(first.replica, second.replica);
    assert.deepEqual(new Set([first.replica, second.replica]), new Set(status.replicas.map((r: any) => String(r.pid))));

    // Other protocol routes pass through too, with the replica's status code.
    assert.equal((await fetch(`${status.endpoint}/v2/health/ready`)).status, 200);
    const missing = await fetch(`${status.endpoint}/v2/models/nope`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as any).error, /unknown model "nope"/);
  });

  test('PUT with the same spec changes nothing (same pids)', async () => {
    const before = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const again = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, { modelDir, replicas: 2, model: 'mlp' });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.replicas, before.replicas);
    const list = await control(fx.gateway.url, 'GET', '/deployments');
    assert.deepEqual(
      list.json.deployments.map((d: any) => d.id),
      [id],
    );
    assert.ok(list.json.deployments[0].requestsServed >= 2);
    assert.equal(typeof list.json.deployments[0].lastRequestAt, 'string');
  });

  test('metrics: merged Prometheus text with a replica label, or per-replica JSON', async () => {
    const status = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const res = await fetch(`${fx.gateway.url}/_ferry/deployments/${id}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.equal(
      text.match(/^# TYPE ferry_inference_requests_total counter$/gm)?.length,
      1,
      'one TYPE line per family',
    );
    for (const r of status.replicas) {
      assert.match(
        text,
        new RegExp(
          `^ferry_inference_requests_total\\{replica="${r.pid}",revision="default",model="mlp",version="1"\\} \\d+$`,
          'm',
        ),
      );
      assert.match(
        text,
        new RegExp(
          `^ferry_inference_request_duration_seconds_bucket\\{replica="${r.pid}",revision="default",model="mlp",version="1",le="0.0001"\\} \\d+$`,
          'm',
        ),
      );
    }
    const total = [...text.matchAll(/^ferry_inference_requests_total\{[^}]*\} (\d+)$/gm)].reduce(
      (a, m) => a + Number(m[1]),
      0,
    );
    assert.ok(total >= 2, `requests counted across replicas: ${total}`);

    const json = await control(fx.gateway.url, 'GET', `/deployments/${id}/metrics?format=json`);
    assert.equal(json.json.replicas.length, 2);
    assert.match(json.json.replicas[0].metricsText, /ferry_inference_requests_total/);
  });

  test('a killed replica is replaced', async () => {
    const before = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const victim = before.replicas[0].pid;
    process.kill(victim, 'SIGKILL');
    const after = await eventually('a replacement replica', async () => {
      const s = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
      return s.replicas.length === 2 && s.replicas.every((r: any) => r.ready && r.pid !== victim) ? s : undefined;
    });
    assert.ok(after.restarts >= 1);
    assert.ok(
      after.replicas.some((r: any) => r.pid === before.replicas[1].pid),
      'the healthy replica was left alone',
    );
    for (let i = 0; i < 2; i++) assert.equal((await inferThrough(after.endpoint)).status, 200);
  });

  test('hibernate stops every replica; the next request is held, wakes it, and is answered', async () => {
    const running = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const pids = running.replicas.map((r: any) => r.pid);
    const hib = await control(fx.gateway.url, 'POST', `/deployments/${id}/hibernate`);
    assert.equal(hib.status, 200);
    assert.equal(hib.json.state, 'hibernated');
    assert.deepEqual(hib.json.replicas, []);
    await assertAllDead(pids, 'hibernate');

    const coldStartsBefore = hib.json.coldStarts;
    const res = await inferThrough(running.endpoint);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json.outputs[0].data, expected);
    const woke = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    assert.equal(woke.state, 'running');
    assert.equal(woke.coldStarts, coldStartsBefore + 1);
    assert.equal(typeof woke.lastWakeMs, 'number');
    // The held request is answered by the first ready replica; the second starts right behind it.
    const both = await eventually('both replicas ready', async () => {
      const s = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
      return s.replicas.length === 2 && s.replicas.every((r: any) => r.ready) ? s : undefined;
    });
    assert.ok(both.replicas.every((r: any) => !pids.includes(r.pid)));
  });

  test('concurrent requests during a wake share one wake', async () => {
    await control(fx.gateway.url, 'POST', `/deployments/${id}/hibernate`);
    const before = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const results = await Promise.all(Array.from({ length: 6 }, () => inferThrough(before.endpoint)));
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200, 200, 200],
    );
    // The held requests are answered by the first ready replica; the second starts right behind it.
    await eventually('the wake to finish starting replicas', async () => {
      const s = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
      return s.replicas.length >= 2 && s.replicas.every((r: any) => r.ready);
    });
    await sleep(300);
    const after = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    assert.equal(after.coldStarts, before.coldStarts + 1);
    assert.equal(after.replicas.length, 2, 'one wake started exactly the desired replicas');
  });

  test('explicit wake and a changed spec (new model dir) replaces the replicas', async () => {
    await control(fx.gateway.url, 'POST', `/deployments/${id}/hibernate`);
    const woke = await control(fx.gateway.url, 'POST', `/deployments/${id}/wake`);
    assert.equal(woke.status, 200);
    assert.equal(woke.json.state, 'running');
    const oldPids = woke.json.replicas.map((r: any) => r.pid);

    const v2Dir = await modelDirWith(MLP_V2, fx.dir, 'models-v2');
    const replaced = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, {
      modelDir: v2Dir,
      replicas: 1,
      model: 'mlp',
    });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
    assert.equal(replaced.json.replicas.length, 1);
    assert.ok(!oldPids.includes(replaced.json.replicas[0].pid));
    await assertAllDead(oldPids, 'replaced replicas');
    const res = await inferThrough(replaced.json.endpoint);
    assert.deepEqual(res.json.outputs[0].data, await directOutput(MLP_V2));
  });

  test('scaling (only replicas changed) keeps the running replicas', async () => {
    const before = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const up = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, {
      modelDir: before.modelDir,
      replicas: 2,
      model: 'mlp',
    });
    assert.equal(up.json.replicas.length, 2);
    assert.ok(up.json.replicas.some((r: any) => r.pid === before.replicas[0].pid));
  });

  test('DELETE stops every replica and removes the route', async () => {
    const status = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const pids = status.replicas.map((r: any) => r.pid);
    assert.equal((await control(fx.gateway.url, 'DELETE', `/deployments/${id}`)).status, 204);
    await assertAllDead(pids, 'delete');
    assert.equal((await control(fx.gateway.url, 'GET', `/deployments/${id}`)).status, 404);
    assert.equal((await control(fx.gateway.url, 'DELETE', `/deployments/${id}`)).status, 204, 'DELETE is idempotent');
    const res = await inferThrough(status.endpoint);
    assert.equal(res.status, 404);
    assert.equal(res.json.error, `no deployment "${id}" on this gateway`);
  });

  test('bad specs and unknown deployments get 4xx naming the problem', async () => {
    const bad = async (body: unknown) => (await control(fx.gateway.url, 'PUT', '/deployments/x', body)).json.error;
    assert.match(await bad({ modelDir, replicas: 0, model: 'mlp' }), /"replicas" must be an integer from 1/);
    assert.match(await bad({ replicas: 1, model: 'mlp' }), /exactly one of "image".*or "modelDir"/);
    assert.match(await bad({ modelDir: '/nonexistent', replicas: 1, model: 'mlp' }), /has no ferry-models.json/);
    assert.match(
      await bad({ image: { registry: 'http://127.0.0.1:1' }, replicas: 1, model: 'mlp' }),
      /"image.repository" must be/,
    );
    assert.equal(
      (await control(fx.gateway.url, 'PUT', '/deployments/-bad', { modelDir, replicas: 1, model: 'm' })).status,
      400,
    );
    assert.equal((await control(fx.gateway.url, 'POST', '/deployments/nope/hibernate')).status, 404);
    assert.equal((await control(fx.gateway.url, 'POST', '/deployments/nope/wake')).status, 404);
    assert.equal((await control(fx.gateway.url, 'GET', '/deployments/nope/metrics')).status, 404);
    const res = await fetch(`${fx.gateway.url}/elsewhere`);
    assert.equal(res.status, 404);
  });
});

describe('gateway: failures', () => {
  test('a second gateway on the same state dir is refused', async () => {
    const fx = await startTestGateway('gateway-lock');
    try {
      // A lock held by this very process counts as ours (in-process restarts), so fake another holder:
      // the test runner's parent process is alive and is not us.
      const lockFile = path.join(fx.dir, 'state', 'gateway', 'gateway.lock');
      writeFileSync(lockFile, JSON.stringify({ pid: process.ppid, procStartTicks: readProcStartTicks(process.ppid) }));
      await assert.rejects(
        startGateway({ port: 0, stateDir: path.join(fx.dir, 'state'), log: () => {} }),
        new RegExp(`another Ferry gateway \\(pid ${process.ppid}\\) is using`),
      );
    } finally {
      await fx.cleanup();
    }
  });

  test('a replica that cannot start fails the PUT with its log tail and leaves no process', async () => {
    const fx = await startTestGateway('gateway-fail');
    try {
      const broken = await modelDirWith(new Uint8Array([1, 2, 3, 4]), fx.dir, 'broken');
      const res = await control(fx.gateway.url, 'PUT', '/deployments/broken', {
        modelDir: broken,
        replicas: 1,
        model: 'mlp',
      });
      assert.equal(res.status, 500);
      assert.match(
        res.json.error,
        /deployment "broken": replica pid \d+ exited with code 1 before it was ready; its log ends with:\n[\s\S]*fatal: cannot load model "mlp"/,
      );
      assert.equal((await control(fx.gateway.url, 'GET', '/deployments/broken')).status, 404);
      const pid = Number(/replica pid (\d+)/.exec(res.json.error)![1]);
      assert.equal(isAlive(pid), false);
    } finally {
      await fx.cleanup();
    }
  });

  test('a request held longer than the hold timeout gets 503 with Retry-After; the wake still completes', async () => {
    const fx = await startTestGateway('gateway-hold', { holdTimeoutMs: 30 });
    try {
      const modelDir = await modelDirWith(MLP_V1, fx.dir);
      const put = await control(fx.gateway.url, 'PUT', '/deployments/slow', { modelDir, replicas: 1, model: 'mlp' });
      assert.equal(put.status, 200);
      await control(fx.gateway.url, 'POST', '/deployments/slow/hibernate');
      const res = await inferThrough(put.json.endpoint);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.match(res.json.error, /deployment "slow" is waking up and was not ready within 30 ms; retry shortly/);
      await eventually(
        'the wake to finish',
        async () => (await control(fx.gateway.url, 'GET', '/deployments/slow')).json.state === 'running',
      );
      assert.equal((await inferThrough(put.json.endpoint)).status, 200);
    } finally {
      await fx.cleanup();
    }
  });
});
