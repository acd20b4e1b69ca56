/**
 * Traffic splits between revisions (each its own replica set): canary by percent, A/B by header,
 * changed at run time under concurrent load without a failed request; replacing or removing a
 * revision drains its replicas. Real replicas, real HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertAllDead,
  control,
  directOutput,
  type GatewayFixture,
  gatewayMetrics,
  type InferOutcome,
  inferThrough,
  isAlive,
  MLP_V1,
  MLP_V2,
  modelDirWith,
  startLoad,
  startTestGateway,
} from './gatewayFixture';

describe('traffic splits between revisions', () => {
  let fx: GatewayFixture;
  let v1Dir: string;
  let v2Dir: string;
  let expected: Record<string, number[]>;
  let endpoint: string;
  const id = 'split';

  const spec = (traffic: object) => ({
    model: 'mlp',
    replicas: 1,
    revisions: [
      { name: 'stable', modelDir: v1Dir },
      { name: 'canary', modelDir: v2Dir },
    ],
    traffic,
  });

  /** Every outcome is a 200 whose output is what its revision's model computes. */
  function assertAllServedCorrectly(
    outcomes: InferOutcome[] | Array<{ status: number; revision: string | null; json: any }>,
  ): void {
    const failed = outcomes.filter((o) => o.status !== 200);
    assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 3))}`);
    for (const o of outcomes)
      assert.deepEqual(
        o.json.outputs[0].data,
        expected[o.revision!],
        `revision ${o.revision} answered with its own model`,
      );
  }

  before(async () => {
    fx = await startTestGateway('traffic');
    v1Dir = await modelDirWith(MLP_V1, fx.dir, 'v1');
    v2Dir = await modelDirWith(MLP_V2, fx.dir, 'v2');
    expected = { stable: await directOutput(MLP_V1), canary: await directOutput(MLP_V2) };
  });
  after(() => fx.cleanup());

  test('canary 90/10: each revision has its replica set; the split holds within statistical bounds', async () => {
    const put = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, spec({ split: { stable: 90, canary: 10 } }));
    assert.equal(put.status, 200, JSON.stringify(put.json));
    endpoint = put.json.endpoint;
    assert.deepEqual(
      put.json.revisions.map((r: any) => [r.name, r.percent, r.desiredReplicas, r.readyReplicas, r.modelDir]),
      [
        ['stable', 90, 1, 1, v1Dir],
        ['canary', 10, 1, 1, v2Dir],
      ],
    );
    assert.deepEqual(put.json.replicas.map((r: any) => r.revision).sort(), ['canary', 'stable']);
    assert.deepEqual(put.json.traffic, { split: { stable: 90, canary: 10 }, rules: [] });

    const n = 600;
    const outcomes: Array<Awaited<ReturnType<typeof inferThrough>>> = [];
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (outcomes.length < n) outcomes.push(await inferThrough(endpoint));
      }),
    );
    assertAllServedCorrectly(outcomes);
    const canary = outcomes.filter((o) => o.revision === 'canary').length;
    // Binomial(n, 0.1): mean 60, sd 7.3; ±4 sd fails a correct router about once in 16000 runs.
    const sd = Math.sqrt(outcomes.length * 0.1 * 0.9);
    assert.ok(Math.abs(canary - outcomes.length * 0.1) <= 4 * sd, `${canary} of ${outcomes.length} went to the canary`);
    const m = await gatewayMetrics(fx.gateway.url);
    assert.equal(m.value('ferry_gateway_requests_total', { deployment: id, revision: 'canary', code: '200' }), canary);
    // The replicas' own metrics carry the revision too: a canary's latency and errors can be compared.
    const replicaText = await (await fetch(`${fx.gateway.url}/_ferry/deployments/${id}/metrics`)).text();
    const served = (rev: string) =>
      [
        ...replicaText.matchAll(
          new RegExp(
            `^ferry_inference_requests_total\\{replica="\\d+",revision="${rev}",model="mlp",version="1"\\} (\\d+)$`,
            'gm',
          ),
        ),
      ].reduce((a, x) => a + Number(x[1]), 0);
    assert.equal(served('canary'), canary);
    assert.equal(served('stable'), outcomes.length - canary);
    assert.equal(m.value('ferry_gateway_traffic_percent', { deployment: id, revision: 'canary' }), 10);
  });

  test('changing the split at run time under concurrent load fails no request and applies from the next request', async () => {
    const status = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const pidsBefore = status.replicas.map((r: any) => r.pid).sort();
    const load = startLoad(8, async () => {
      const r = await inferThrough(endpoint);
      return { status: r.status, revision: r.revision, replica: r.replica, json: r.json };
    });
    await sleep(300);
    const toCanary = await control(fx.gateway.url, 'PUT', `/deployments/${id}/traffic`, { split: { canary: 100 } });
    assert.equal(toCanary.status, 200, JSON.stringify(toCanary.json));
    const switchedAt = performance.now();
    await sleep(400);
    // The same change through a whole spec: traffic only, so nothing restarts either.
    const splitSentAt = performance.now();
    const back = await control(
      fx.gateway.url,
      'PUT',
      `/deployments/${id}`,
      spec({ split: { stable: 50, canary: 50 } }),
    );
    assert.equal(back.status, 200, JSON.stringify(back.json));
    const splitAgainAt = performance.now();
    await sleep(400);
    const outcomes = await load.stop();

    assert.ok(outcomes.length > 50, `enough load: ${outcomes.length} requests`);
    assertAllServedCorrectly(outcomes);
    const allCanary = outcomes.filter((o) => o.sentAt! > switchedAt && o.sentAt! < splitSentAt);
    assert.ok(allCanary.length > 5);
    assert.deepEqual(
      [...new Set(allCanary.map((o) => o.revision))],
      ['canary'],
      'after the change every new request went to the canary',
    );
    const afterSplit = outcomes.filter((o) => o.sentAt! > splitAgainAt);
    assert.deepEqual([...new Set(afterSplit.map((o) => o.revision))].sort(), ['canary', 'stable']);
    const now = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    assert.deepEqual(
      now.replicas.map((r: any) => r.pid).sort(),
      pidsBefore,
      'no replica was restarted by a traffic change',
    );
  });

  test('A/B by header: x-ferry-variant names a revision; a header rule routes a group', async () => {
    const put = await control(fx.gateway.url, 'PUT', `/deployments/${id}/traffic`, {
      split: { stable: 100 },
      rules: [{ header: 'X-User-Group', value: 'beta', revision: 'canary' }],
    });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.deepEqual(put.json.traffic.rules, [{ header: 'x-user-group', value: 'beta', revision: 'canary' }]);
    const ask = async (headers: Record<string, string>) => {
      const rs = await Promise.all(Array.from({ length: 10 }, () => inferThrough(endpoint, headers)));
      assertAllServedCorrectly(rs);
      return [...new Set(rs.map((r) => r.revision))];
    };
    assert.deepEqual(await ask({}), ['stable']);
    assert.deepEqual(await ask({ 'x-user-group': 'beta' }), ['canary']);
    assert.deepEqual(await ask({ 'x-user-group': 'alpha' }), ['stable']);
    assert.deepEqual(await ask({ 'x-ferry-variant': 'canary' }), ['canary']);
    assert.deepEqual(
      await ask({ 'x-ferry-variant': 'stable', 'x-user-group': 'beta' }),
      ['stable'],
      'x-ferry-variant comes first',
    );
    assert.deepEqual(
      await ask({ 'x-ferry-variant': 'nope' }),
      ['stable'],
      'an unknown variant falls through to the split',
    );
  });

  test('bad traffic policies are refused with the reason; nothing changes', async () => {
    const bad = async (body: unknown) => {
      const res = await control(fx.gateway.url, 'PUT', `/deployments/${id}/traffic`, body);
      assert.equal(res.status, 400, JSON.stringify(res.json));
      return res.json.error as string;
    };
    assert.match(await bad({ split: { stable: 50, canary: 40 } }), /must add up to 100 \(they add up to 90\)/);
    assert.match(
      await bad({ split: { stable: 50, other: 50 } }),
      /names revision "other", which this deployment does not have \(it has: stable, canary\)/,
    );
    assert.match(
      await bad({ rules: [{ header: 'x-a', value: 'b', revision: 'gone' }] }),
      /traffic.rules\[0\]" names revision "gone"/,
    );
    assert.match(await bad({ spilt: {} }), /unknown field "spilt"/);
    assert.equal(
      (await control(fx.gateway.url, 'PUT', '/deployments/nope/traffic', { split: { x: 100 } })).status,
      404,
    );
    const spec400 = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, {
      ...spec({}),
      revisions: [
        { name: 'a', modelDir: v1Dir },
        { name: 'a', modelDir: v2Dir },
      ],
    });
    assert.equal(spec400.status, 400);
    assert.match(spec400.json.error, /revision "a" is listed twice/);
    const now = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    assert.deepEqual(now.traffic.split, { stable: 100 });
  });

  test('replacing one revision drains only its replicas, under load, with no failed request; removing one stops it', async () => {
    await control(fx.gateway.url, 'PUT', `/deployments/${id}/traffic`, { split: { stable: 50, canary: 50 } });
    const before = (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
    const stablePid = before.replicas.find((r: any) => r.revision === 'stable').pid;
    const canaryPid = before.replicas.find((r: any) => r.revision === 'canary').pid;
    const load = startLoad(6, async () => {
      const r = await inferThrough(endpoint);
      return { status: r.status, revision: r.revision, replica: r.replica, json: r.json };
    });
    await sleep(200);
    // The canary revision now runs v1's model dir (a new launch plan): its replica is replaced.
    const swapped = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, {
      model: 'mlp',
      replicas: 1,
      revisions: [
        { name: 'stable', modelDir: v1Dir },
        { name: 'canary', modelDir: v1Dir },
      ],
      traffic: { split: { stable: 50, canary: 50 } },
    });
    assert.equal(swapped.status, 200, JSON.stringify(swapped.json));
    const outcomes = await load.stop();
    assert.equal(
      outcomes.filter((o) => o.status !== 200).length,
      0,
      JSON.stringify(outcomes.find((o) => o.status !== 200)),
    );
    assert.ok(outcomes.length > 20);
    await assertAllDead([canaryPid], 'the replaced canary replica');
    assert.ok(isAlive(stablePid), 'the other revision was not touched');
    const newCanary = swapped.json.replicas.find((r: any) => r.revision === 'canary');
    assert.notEqual(newCanary.pid, canaryPid);
    const fromNew = await inferThrough(endpoint, { 'x-ferry-variant': 'canary' });
    assert.deepEqual(fromNew.json.outputs[0].data, expected.stable, 'the replaced revision serves its new model');

    const single = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, {
      model: 'mlp',
      replicas: 1,
      revisions: [{ name: 'stable', modelDir: v1Dir }],
    });
    assert.equal(single.status, 200, JSON.stringify(single.json));
    assert.deepEqual(
      single.json.revisions.map((r: any) => r.name),
      ['stable'],
    );
    assert.deepEqual(single.json.traffic.split, { stable: 100 });
    await assertAllDead([newCanary.pid], 'the removed revision');
    assert.equal((await inferThrough(endpoint, { 'x-ferry-variant': 'canary' })).revision, 'stable');
  });
});
