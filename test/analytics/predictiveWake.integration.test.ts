/**
 * The predictive floor on the real stack: a deployment made with `predictive: 'on'` is hibernated by
 * its monitor when idle; then its stored history is given three earlier days with a burst at this time
 * of day (rows in deployment_metrics, as the monitor records them), and the monitor's next collections
 * forecast the rise and wake it through the gateway's replica floor, before any request, keeping it
 * up while the floor holds. The first request after that meets no cold start.
 *
 * It runs against a scratch database (all migrations applied), so the shared one is left as it is.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApiServer } from '../../client/api/server';
import { closePools, getPool } from '../../lib/db/pool';
import { eventually, type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';
import { scratchDatabase } from '../helpers/scratchDatabase';

const INTERVAL_MS = 1000;
const MINUTE = 60_000;
const DAY = 1440 * MINUTE;

const scratch = scratchDatabase('predictive');

let h: FerryHarness;
let api: Awaited<ReturnType<typeof startApiServer>>;
before(async () => {
  await scratch.create();
  h = await startHarness('predictive');
  await h.startWorker();
  api = await startApiServer(h.config, await freePort());
});
after(async () => {
  await api?.close();
  await h?.close();
  await closePools();
  await scratch.drop();
});

test('a forecast burst wakes a hibernated deployment before its first request', { timeout: 180_000 }, async () => {
  const name = `pred-${h.runId}`;
  const started = await h.ferry.deploy(await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3 }), {
    model: name,
    monitor: { intervalMs: INTERVAL_MS, idleHibernateMs: 3000, predictive: 'on' },
  });
  const id = started.deploymentId;
  await h.ferry.waitForResult(id);
  const db = getPool(scratch.url);
  const eventsOf = async (kind: string) =>
    (
      await db.query(`SELECT detail FROM deployment_events WHERE deployment_id = $1 AND kind = $2 ORDER BY at`, [
        id,
        kind,
      ])
    ).rows;

  // No history yet: nothing is forecast, so the idle deployment is hibernated as usual.
  await eventually(
    'the monitor to hibernate the idle deployment',
    async () => (await eventsOf('hibernated')).length > 0,
    40_000,
  );
  assert.equal((await h.gatewayStatus(id)).body.state, 'hibernated');
  const serving = await h.ferry.serving(id);
  assert.equal(serving?.predictive?.mode, 'on');
  assert.match(serving!.predictive!.reason, /no rise/);

  // Yesterday and the two days before: 120 requests a minute over the next ten minutes of the day.
  const now = Date.now();
  for (let day = 1; day <= 3; day++) {
    for (let m = -2; m <= 10; m++) {
      await db.query(
        `INSERT INTO deployment_metrics(deployment_id, collected_at, request_count, error_count, requests_delta, replicas)
         VALUES ($1, $2, 0, 0, 120, 1)`,
        [id, new Date(now - day * DAY + m * MINUTE)],
      );
    }
  }

  const woke = await eventually(
    'the predictive floor to wake it',
    async () => (await eventsOf('woke')).find((e) => e.detail?.by === 'predictive floor'),
    30_000,
  );
  assert.ok(woke.detail.floor >= 1, JSON.stringify(woke));
  const running = await eventually(
    'a ready replica, with no request sent',
    async () => {
      const s = (await h.gatewayStatus(id)).body;
      return s.state === 'running' && s.replicas.some((r: { ready: boolean }) => r.ready) ? s : undefined;
    },
    30_000,
  );
  assert.equal(running.coldStarts, 0, 'woken ahead of traffic, not by a request');
  // The floor is renewed at each collection: the monitor does not hibernate it again meanwhile.
  await new Promise((r) => setTimeout(r, 5 * INTERVAL_MS));
  assert.equal((await h.gatewayStatus(id)).body.state, 'running', 'held up by the floor past idleHibernateMs');
  const held = await h.ferry.serving(id);
  assert.equal(held?.predictive?.applied, true);
  assert.ok(held!.predictive!.floor >= 1);
  assert.match(held!.predictive!.reason, /forecast peak/);

  // What the dashboard charts: each decision, next to the actual requests per minute.
  const res = await fetch(`${api.url}/api/deployments/${encodeURIComponent(id)}/forecast`, {
    headers: { authorization: `Bearer ${h.adminKey}` },
  });
  assert.equal(res.status, 200);
  const view = (await res.json()) as {
    decisions: Array<{ forecastPerMinute: number; floor: number; applied: boolean; mode: string }>;
    actual: Array<{ t: number; requestsPerMinute: number }>;
  };
  assert.ok(view.decisions.length >= 3, `${view.decisions.length} decisions`);
  assert.ok(view.decisions.some((d) => d.forecastPerMinute > 0 && d.floor >= 1 && d.applied && d.mode === 'on'));
  assert.equal(view.actual.length, 360, 'six hours of minutes by default');
  assert.ok(view.actual.every((a, i) => i === 0 || a.t - view.actual[i - 1]!.t === MINUTE));
  const unauthenticated = await fetch(`${api.url}/api/deployments/${encodeURIComponent(id)}/forecast`);
  assert.equal(unauthenticated.status, 401);

  const request = { inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] };
  await h.ferry.infer(id, request);
  assert.equal((await h.gatewayStatus(id)).body.coldStarts, 0, 'the first request met a ready replica');
  await h.ferry.undeploy(id);
});
