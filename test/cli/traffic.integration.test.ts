/**
 * `ferry traffic` and `ferry scale` as a user runs them (bin/ferry as a subprocess) against a real
 * gateway with real replicas: a deployment of two revisions applied directly (no pipeline), its split
 * and header rules changed and seen in the responses' x-ferry-revision, bad input refused with the
 * reason and nothing changed, autoscaling turned on with the same replicas serving, and clear errors
 * for an unknown deployment and a gateway that is down.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../lib/gateway/replicaProcess';
import {
  control,
  eventually,
  type GatewayFixture,
  inferThrough,
  isAlive,
  MLP_V1,
  MLP_V2,
  modelDirWith,
  startTestGateway,
} from '../gateway/gatewayFixture';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');

describe('ferry traffic and ferry scale', () => {
  let fx: GatewayFixture;
  let endpoint: string;
  const id = 'ab';

  async function ferry(
    args: string[],
    gatewayUrl = fx.gateway.url,
  ): Promise<{ code: number; out: string; err: string }> {
    const env = { ...process.env, FERRY_GATEWAY_URL: gatewayUrl };
    try {
      const { stdout, stderr } = await run(ferryBin, args, { env, timeout: 60_000 });
      return { code: 0, out: stdout, err: stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
    }
  }
  const status = async () => (await control(fx.gateway.url, 'GET', `/deployments/${id}`)).json;
  /** The revisions that answered `n` requests with these headers. */
  async function revisionsServing(n: number, headers: Record<string, string> = {}): Promise<string[]> {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await inferThrough(endpoint, headers);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      seen.add(r.revision!);
    }
    return [...seen].sort();
  }

  before(async () => {
    fx = await startTestGateway('cli-traffic', { autoscaleTickMs: 50 });
    const put = await control(fx.gateway.url, 'PUT', `/deployments/${id}`, {
      model: 'mlp',
      replicas: 1,
      revisions: [
        { name: 'stable', modelDir: await modelDirWith(MLP_V1, fx.dir, 'v1') },
        { name: 'canary', modelDir: await modelDirWith(MLP_V2, fx.dir, 'v2') },
      ],
    });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    endpoint = put.json.endpoint;
  });
  after(() => fx?.cleanup());

  test('traffic: show, split 100/0 then 0/100, a header rule, clear the rules', { timeout: 120_000 }, async () => {
    const shown = await ferry(['traffic', id]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /stable\s+100%\s+1\/1/);
    assert.match(shown.out, /canary\s+0%\s+1\/1/);
    assert.match(shown.out, /Header rules: none/);
    const pidsBefore = (await status()).replicas.map((r: any) => r.pid).sort();

    const toStable = await ferry(['traffic', id, '--split', 'stable=100,canary=0']);
    assert.equal(toStable.code, 0, toStable.err);
    assert.deepEqual(await revisionsServing(20), ['stable']);

    const toCanary = await ferry(['traffic', id, '--split', 'stable=0,canary=100']);
    assert.equal(toCanary.code, 0, toCanary.err);
    assert.match(toCanary.out, /canary\s+100%/);
    assert.deepEqual(await revisionsServing(20), ['canary']);

    // A rule alone keeps the split.
    const rule = await ferry(['traffic', id, '--rule', 'X-User-Group:beta=stable']);
    assert.equal(rule.code, 0, rule.err);
    assert.match(rule.out, /x-user-group: beta → stable/);
    assert.deepEqual(await revisionsServing(10, { 'x-user-group': 'beta' }), ['stable']);
    assert.deepEqual(await revisionsServing(10, { 'x-user-group': 'alpha' }), ['canary']);
    assert.deepEqual(await revisionsServing(10), ['canary']);

    const json = await ferry(['traffic', id, '--json']);
    assert.equal(json.code, 0, json.err);
    assert.deepEqual(JSON.parse(json.out).traffic, {
      split: { canary: 100 },
      rules: [{ header: 'x-user-group', value: 'beta', revision: 'stable' }],
    });

    const cleared = await ferry(['traffic', id, '--clear-rules']);
    assert.equal(cleared.code, 0, cleared.err);
    assert.deepEqual(await revisionsServing(10, { 'x-user-group': 'beta' }), ['canary']);
    assert.deepEqual((await status()).traffic, { split: { canary: 100 }, rules: [] });
    assert.deepEqual((await status()).replicas.map((r: any) => r.pid).sort(), pidsBefore, 'no replica restarted');
  });

  test('traffic: a bad split or rule is refused with the reason, exit 1, and nothing changes', {
    timeout: 120_000,
  }, async () => {
    await ferry(['traffic', id, '--split', 'stable=70,canary=30', '--rule', 'x-user-group:beta=canary']);
    const before = (await status()).traffic;
    assert.deepEqual(before, {
      split: { stable: 70, canary: 30 },
      rules: [{ header: 'x-user-group', value: 'beta', revision: 'canary' }],
    });
    const refused = async (args: string[], pattern: RegExp) => {
      const r = await ferry(['traffic', id, ...args]);
      assert.equal(r.code, 1, `${args.join(' ')} must fail: ${r.out}`);
      assert.match(r.err, pattern);
      assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
    };
    await refused(
      ['--split', 'stable=50,canary=40'],
      /^ferry: traffic of ab not changed: .*must add up to 100 \(they add up to 90\)/,
    );
    await refused(
      ['--split', 'stable=50,nope=50'],
      /names revision "nope", which this deployment does not have \(it has: stable, canary\)/,
    );
    await refused(['--rule', 'x-team:red=ghost'], /names revision "ghost", which this deployment does not have/);
    await refused(['--split', 'stable:100'], /--split: "stable:100" is not revision=percent/);
    await refused(['--rule', 'no-separator'], /--rule: "no-separator" is not header:value=revision/);
    assert.deepEqual((await status()).traffic, before);
  });

  test('scale: show, autoscaling on with the same replicas serving, fixed again, scale to zero on and off', {
    timeout: 120_000,
  }, async () => {
    const first = await status();
    const originalPids = first.replicas.map((r: any) => r.pid).sort();
    const shown = await ferry(['scale', id]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /Fixed:\s+1 replica\(s\) per revision/);
    assert.match(shown.out, /Scale to zero: off/);
    for (const r of first.replicas)
      assert.match(shown.out, new RegExp(`${r.revision}\\s+1\\s+1\\s+0\\s+0\\s+${r.pid}`));

    const auto = await ferry([
      'scale',
      id,
      '--min',
      '2',
      '--max',
      '3',
      '--target-concurrency',
      '4',
      '--scale-down-delay',
      '10m',
    ]);
    assert.equal(auto.code, 0, auto.err);
    assert.match(
      auto.out,
      /Autoscaling:\s+2–3 replicas per revision, target 4 in flight per replica, scale-down delay 10m/,
    );
    const scaled = await status();
    assert.deepEqual(
      [
        scaled.autoscaling.minReplicas,
        scaled.autoscaling.maxReplicas,
        scaled.autoscaling.targetInFlight,
        scaled.autoscaling.scaleDownDelayMs,
      ],
      [2, 3, 4, 600_000],
    );
    assert.deepEqual(
      scaled.revisions.map((r: any) => [r.name, r.desiredReplicas, r.readyReplicas]),
      [
        ['stable', 2, 2],
        ['canary', 2, 2],
      ],
    );
    assert.equal(scaled.replicas.length, 4);
    const pidsNow = scaled.replicas.map((r: any) => r.pid);
    for (const pid of originalPids)
      assert.ok(pidsNow.includes(pid) && isAlive(pid), `replica ${pid} was not restarted`);
    // The original replicas still take requests, next to the new ones.
    const servedBy = new Set<number>();
    for (let i = 0; i < 16; i++) {
      for (const variant of ['stable', 'canary'])
        servedBy.add(Number((await inferThrough(endpoint, { 'x-ferry-variant': variant })).replica));
    }
    for (const pid of originalPids)
      assert.ok(servedBy.has(pid), `replica ${pid} still serves (served by ${[...servedBy].join(', ')})`);
    assert.deepEqual(scaled.traffic, first.traffic, 'scaling leaves the traffic alone');
    assert.deepEqual(scaled.spec.revisions, first.spec.revisions, 'and the revisions');

    const shownAuto = await ferry(['scale', id]);
    assert.match(shownAuto.out, /stable\s+2\s+2\s+/);
    assert.match(shownAuto.out, /canary\s+2\s+2\s+/);

    const idle = await ferry(['scale', id, '--scale-to-zero-after', '10m']);
    assert.equal(idle.code, 0, idle.err);
    assert.match(idle.out, /Scale to zero: after 10m without a request/);
    assert.equal((await status()).scaleToZeroAfterMs, 600_000);
    assert.equal((await status()).autoscaling.minReplicas, 2, 'the autoscaling settings stay');

    const fixed = await ferry(['scale', id, '--replicas', '1', '--no-scale-to-zero']);
    assert.equal(fixed.code, 0, fixed.err);
    const back = await eventually('one replica per revision again', async () => {
      const s = await status();
      return s.replicas.length === 2 ? s : undefined;
    });
    assert.equal(back.autoscaling, null);
    assert.equal(back.scaleToZeroAfterMs, null);
    assert.deepEqual(
      back.replicas.map((r: any) => r.pid).sort(),
      originalPids,
      'the oldest replicas are the ones kept',
    );
  });

  test('scale: bad flags are refused before anything changes', { timeout: 60_000 }, async () => {
    const before = await status();
    const refused = async (args: string[], pattern: RegExp) => {
      const r = await ferry(['scale', id, ...args]);
      assert.equal(r.code, 1, `${args.join(' ')} must fail: ${r.out}`);
      assert.match(r.err, pattern);
    };
    await refused(['--replicas', '2', '--min', '1'], /give either --replicas N .* not both/);
    await refused(['--min', '3', '--max', '2'], /--max \(2\) must be at least --min \(3\)/);
    await refused(
      ['--max', '65'],
      /scaling of ab not changed: "autoscaling.maxReplicas" must be an integer from minReplicas \(1\) to 64/,
    );
    await refused(['--scale-down-delay', 'soon'], /--scale-down-delay: "soon" is not a duration/);
    await refused(['--scale-to-zero-after', '10m', '--no-scale-to-zero'], /not both/);
    await refused(['--replicas', '0'], /--replicas must be a positive integer/);
    const now = await status();
    assert.deepEqual(
      [now.autoscaling, now.scaleToZeroAfterMs, now.replicas.map((r: any) => r.pid).sort()],
      [before.autoscaling, before.scaleToZeroAfterMs, before.replicas.map((r: any) => r.pid).sort()],
    );
  });

  test('an unknown deployment and a gateway that is down: one clear line, exit 1', { timeout: 60_000 }, async () => {
    for (const command of ['traffic', 'scale']) {
      const unknown = await ferry([command, 'no-such-deployment-anywhere']);
      assert.equal(unknown.code, 1);
      assert.match(
        unknown.err,
        /^ferry: no deployment "no-such-deployment-anywhere": the gateway at http:\/\/127\.0\.0\.1:\d+ serves none by that id/,
      );
      assert.equal(unknown.err.trim().split('\n').length, 1, unknown.err);
    }
    const downUrl = `http://127.0.0.1:${await freePort()}`;
    const down = await ferry(['traffic', id, '--split', 'stable=100'], downUrl);
    assert.equal(down.code, 1);
    assert.equal(
      down.err.trim(),
      `ferry: Ferry gateway at ${downUrl} is not reachable (ECONNREFUSED): start it with \`ferry up\` (background) or \`ferry gateway\` (foreground)`,
    );
  });
});
