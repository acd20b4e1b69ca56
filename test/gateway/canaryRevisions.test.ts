/**
 * Canary releases as whole-spec changes on a real gateway (lib/targets/revisions.ts, what the pipeline's
 * deploy stage and the SDK's promote/rollback apply): a single-image deployment gets a second revision
 * without its replica restarting, the same canary applied again and the status's own spec put back
 * change nothing, two canaries read from the same status cannot both apply (If-Match: the second gets
 * 409 instead of silently removing the first), and keeping one revision under concurrent load fails
 * no request while the other revision's replica drains and stops.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayRequestError, LocalTarget } from '../../lib/targets/local';
import { rulesTo, specKeepingOnly, specWithCanary, splitWithCanary } from '../../lib/targets/revisions';
import {
  assertAllDead,
  directOutput,
  type GatewayFixture,
  inferThrough,
  isAlive,
  MLP_V1,
  MLP_V2,
  modelDirWith,
  startLoad,
  startTestGateway,
} from './gatewayFixture';

describe('canary revisions on the gateway', () => {
  let fx: GatewayFixture;
  let target: LocalTarget;
  let v1Dir: string;
  let v2Dir: string;
  let expected: Record<string, number[]>;
  const id = 'canary';
  const pidsOf = (s: { replicas: Array<{ pid: number; revision: string }> }, revision: string) =>
    s.replicas
      .filter((r) => r.revision === revision)
      .map((r) => r.pid)
      .sort();

  before(async () => {
    fx = await startTestGateway('canary-revisions');
    target = new LocalTarget(fx.gateway.url);
    v1Dir = await modelDirWith(MLP_V1, fx.dir, 'v1');
    v2Dir = await modelDirWith(MLP_V2, fx.dir, 'v2');
    expected = { default: await directOutput(MLP_V1), v2: await directOutput(MLP_V2) };
  });
  after(() => fx?.cleanup());

  test('the split scales the other revisions proportionally and adds up to 100', () => {
    assert.deepEqual(splitWithCanary({ default: 100 }, 'v2', 10), { default: 90, v2: 10 });
    assert.deepEqual(splitWithCanary({ a: 75, b: 25 }, 'c', 20), { a: 60, b: 20, c: 20 });
    const thirds = splitWithCanary({ a: 50, b: 50 }, 'c', 33);
    assert.deepEqual(thirds, { a: 33.5, b: 33.5, c: 33 });
    const odd = splitWithCanary({ a: 33.33, b: 33.33, c: 33.34 }, 'd', 7);
    assert.ok(Math.abs(Object.values(odd).reduce((x, y) => x + y, 0) - 100) < 1e-9, JSON.stringify(odd));
    assert.deepEqual(splitWithCanary({ a: 100 }, 'b', 100), { b: 100 }, 'all of it: the others keep no share');
    assert.deepEqual(splitWithCanary({ a: 100 }, 'b', 0), { a: 100 }, 'none: reachable by header only');
  });

  test('a canary joins a single-image deployment; its replica keeps running; applying it again changes nothing', {
    timeout: 120_000,
  }, async () => {
    const first = await target.apply({ id, model: 'mlp', replicas: 1, modelDir: v1Dir });
    assert.deepEqual(
      first.revisions.map((r) => r.name),
      ['default'],
    );
    const defaultPids = pidsOf(first, 'default');
    assert.equal(defaultPids.length, 1);

    const spec = specWithCanary(first, { name: 'v2', modelDir: v2Dir, percent: 50 })!;
    assert.deepEqual(spec.traffic, { split: { default: 50, v2: 50 }, rules: [] });
    const withCanary = await target.apply(spec);
    assert.deepEqual(
      withCanary.revisions.map((r) => [r.name, r.percent, r.readyReplicas]),
      [
        ['default', 50, 1],
        ['v2', 50, 1],
      ],
    );
    assert.deepEqual(pidsOf(withCanary, 'default'), defaultPids, 'the first revision was not restarted');
    const canaryPids = pidsOf(withCanary, 'v2');

    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const r = await inferThrough(withCanary.endpoint);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.outputs[0].data, expected[r.revision!], `revision ${r.revision} serves its own model`);
      seen.add(r.revision!);
    }
    assert.deepEqual([...seen].sort(), ['default', 'v2']);

    // The same canary again: nothing to apply. The status's spec put back as is: no replica restarts, no scale event.
    assert.equal(specWithCanary(withCanary, { name: 'v2', modelDir: v2Dir, percent: 50 }), undefined);
    assert.throws(
      () => specWithCanary(withCanary, { name: 'v2', modelDir: v1Dir, percent: 50 }),
      /already has a revision "v2" serving something else/,
    );
    const events = withCanary.scaleEvents.length;
    const again = await target.apply({ id, ...withCanary.spec });
    assert.deepEqual([pidsOf(again, 'default'), pidsOf(again, 'v2')], [defaultPids, canaryPids]);
    assert.equal(again.scaleEvents.length, events, 'no scale event');
    assert.deepEqual(again.traffic, withCanary.traffic);
  });

  test('changes made over a stale read are refused with 409 (If-Match), so a concurrent canary is never lost', {
    timeout: 120_000,
  }, async () => {
    const read = await target.status(id);
    const first = specWithCanary(read, { name: 'v3', modelDir: v1Dir, percent: 10 })!;
    const second = specWithCanary(read, { name: 'v4', modelDir: v2Dir, percent: 10 })!;
    const applied = await target.apply(first, { ifMatch: read.specVersion });
    assert.notEqual(applied.specVersion, read.specVersion);
    const refused = await target.apply(second, { ifMatch: read.specVersion }).catch((err: unknown) => err);
    assert.ok(refused instanceof GatewayRequestError && refused.status === 409, String(refused));
    assert.match(
      refused.gatewayMessage,
      /deployment "canary" changed since it was read \(spec version \S+, now \S+\); read it again and retry/,
    );
    const stale = await target
      .setTraffic(id, { split: { default: 100 } }, { ifMatch: read.specVersion })
      .catch((err: unknown) => err);
    assert.ok(stale instanceof GatewayRequestError && stale.status === 409, String(stale));
    const now = await target.status(id);
    assert.deepEqual(
      now.revisions.map((r) => [r.name, r.percent]),
      [
        ['default', 45],
        ['v2', 45],
        ['v3', 10],
      ],
      'the first canary stays; nothing of the refused ones applied',
    );
    assert.equal(now.specVersion, applied.specVersion);
    // Read again, then it applies; an unchanged status keeps its version.
    const retried = await target.apply(specWithCanary(now, { name: 'v4', modelDir: v2Dir, percent: 10 })!, {
      ifMatch: now.specVersion,
    });
    assert.deepEqual(
      retried.revisions.map((r) => r.name),
      ['default', 'v2', 'v3', 'v4'],
    );
    assert.equal((await target.status(id)).specVersion, retried.specVersion);
    const missing = await target
      .apply({ id: 'gone', model: 'mlp', replicas: 1, modelDir: v1Dir }, { ifMatch: now.specVersion })
      .catch((err: unknown) => err);
    assert.ok(
      missing instanceof GatewayRequestError &&
        missing.status === 409 &&
        /was removed since it was read/.test(missing.gatewayMessage),
      String(missing),
    );
    // Back to default + v2 at 50/50 for the next test; v3 and v4's replicas drain.
    await target.apply({
      ...retried.spec,
      id,
      revisions: retried.spec.revisions!.slice(0, 2),
      traffic: { split: { default: 50, v2: 50 } },
    });
  });

  test('promote under load: all traffic to the kept revision, the other drained and stopped, no request failed', {
    timeout: 120_000,
  }, async () => {
    const before = await target.setTraffic(id, {
      split: { default: 50, v2: 50 },
      rules: [
        { header: 'x-group', value: 'old', revision: 'default' },
        { header: 'x-group', value: 'new', revision: 'v2' },
      ],
    });
    const [defaultPid] = pidsOf(before, 'default');
    const [canaryPid] = pidsOf(before, 'v2');
    const load = startLoad(6, async () => {
      const r = await inferThrough(before.endpoint, Math.random() < 0.3 ? { 'x-group': 'old' } : {});
      return { status: r.status, revision: r.revision, replica: r.replica, json: r.json };
    });
    await sleep(300);
    const routed = await target.setTraffic(id, { split: { v2: 100 }, rules: rulesTo(before.traffic.rules, 'v2') });
    const spec = specKeepingOnly(routed, 'v2')!;
    assert.deepEqual(
      spec.revisions?.map((r) => r.name),
      ['v2'],
    );
    const promoted = await target.apply(spec);
    const promotedAt = performance.now();
    await sleep(300);
    const outcomes = await load.stop();

    assert.ok(outcomes.length > 30, `enough load: ${outcomes.length}`);
    const failed = outcomes.filter((o) => o.status !== 200);
    assert.equal(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 3))}`);
    for (const o of outcomes) assert.deepEqual(o.json.outputs[0].data, expected[o.revision!]);
    assert.ok(
      outcomes.some((o) => o.revision === 'default'),
      'the old revision served before the promotion',
    );
    assert.deepEqual([...new Set(outcomes.filter((o) => o.sentAt! > promotedAt).map((o) => o.revision))], ['v2']);
    assert.deepEqual(
      promoted.revisions.map((r) => [r.name, r.percent]),
      [['v2', 100]],
    );
    assert.deepEqual(promoted.traffic, {
      split: { v2: 100 },
      rules: [{ header: 'x-group', value: 'new', revision: 'v2' }],
    });
    assert.deepEqual(pidsOf(promoted, 'v2'), [canaryPid], 'the kept revision was not restarted');
    assert.ok(isAlive(canaryPid));
    await assertAllDead([defaultPid], 'the removed revision');
    assert.equal(specKeepingOnly(promoted, 'v2'), undefined, 'already alone: nothing to apply');
    assert.throws(() => specKeepingOnly(promoted, 'default'), /has no revision "default" \(it has: v2\)/);
  });
});
