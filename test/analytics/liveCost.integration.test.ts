/**
 * Live cost accounting on the real stack, with a scripted scenario: a deployment serves 20 requests, is
 * hibernated by the monitor when idle, is woken by 5 more (a cold start) and keeps serving. The
 * replica-seconds stored per interval must add up to the replicas' actual lifetimes (the gateway's
 * start times, the monitor's hibernation), within one collection interval; requests and cold starts
 * must match what was sent; `ferry cost --json` and `ferry status` must show the figures.
 *
 * It runs against a scratch database (all migrations applied), so the shared one is left as it is.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { AnalyticsRepository } from '../../lib/db/analyticsRepository';
import { closePools, getPool } from '../../lib/db/pool';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';
import { scratchDatabase } from '../helpers/scratchDatabase';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');
const INTERVAL_MS = 1000;
const scratch = scratchDatabase('cost');

let h: FerryHarness;
before(async () => {
  await scratch.create();
  h = await startHarness('livecost');
  await h.startWorker();
});
after(async () => {
  await h?.close();
  await closePools();
  await scratch.drop();
});

test('replica-seconds, requests and cold starts of a scripted scenario, stored and reported', async () => {
  const name = `cost-${h.runId}`;
  const started = await h.ferry.deploy(await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3 }), {
    model: name,
    monitor: { intervalMs: INTERVAL_MS, idleHibernateMs: 5000 },
  });
  const id = started.deploymentId;
  await h.ferry.waitForResult(id);
  const request = { inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] };
  for (let i = 0; i < 20; i++) await h.ferry.infer(id, request);
  const first = (await h.gatewayStatus(id)).body;
  assert.equal(first.replicas.length, 1);
  const firstStart = Date.parse(first.replicas[0].startedAt);

  const db = getPool(scratch.url);
  const hibernatedAt = await eventually(
    'the monitor to hibernate the idle deployment',
    async () => {
      const r = await db.query(
        `SELECT extract(epoch FROM at) * 1000 AS at FROM deployment_events WHERE deployment_id = $1 AND kind = 'hibernated'`,
        [id],
      );
      return r.rows.length ? Number(r.rows[0].at) : undefined;
    },
    40_000,
  );
  // Two intervals with nothing held, then the wake.
  await new Promise((r) => setTimeout(r, 2.5 * INTERVAL_MS));
  for (let i = 0; i < 5; i++) await h.ferry.infer(id, request);
  const woken = (await h.gatewayStatus(id)).body;
  assert.ok(woken.coldStarts >= 1);
  const secondStart = Date.parse(woken.replicas[0].startedAt);
  // Three more intervals priced with the woken replica.
  await new Promise((r) => setTimeout(r, 3.5 * INTERVAL_MS));

  const store = new AnalyticsRepository(db);
  const rows = await store.costs(id, 0);
  assert.ok(rows.length >= 8, `${rows.length} intervals`);
  const windowEnd = rows.at(-1)!.to;
  const windowStart = rows[0].from;
  // What the replicas were actually held for inside the priced window.
  const overlap = (a: number, b: number) => Math.max(0, Math.min(b, windowEnd) - Math.max(a, windowStart)) / 1000;
  const truth = overlap(firstStart, hibernatedAt) + overlap(secondStart, windowEnd);
  const counted = rows.reduce((s, r) => s + r.replicaSeconds, 0);
  console.log(`replica-seconds: counted ${counted.toFixed(3)}, held ${truth.toFixed(3)} over ${rows.length} intervals`);
  assert.ok(
    Math.abs(counted - truth) <= (1.5 * INTERVAL_MS) / 1000,
    `counted ${counted.toFixed(2)} replica-seconds, held ${truth.toFixed(2)}`,
  );
  assert.ok(Math.abs(windowStart - firstStart) < 1, 'the first interval starts when the replica did');
  assert.equal(
    rows.reduce((s, r) => s + r.requests, 0),
    25,
  );
  assert.ok(rows.reduce((s, r) => s + r.coldStarts, 0) >= 1, 'the wake is a cold start');
  assert.ok(rows.some((r) => r.coldStarts > 0 && r.coldStartMs !== null && r.coldStartMs > 0));
  // Priced at the local machine's configured cost; the allocation never below the request's share.
  for (const r of rows) {
    assert.match(r.pricing.price.source, /local/);
    assert.ok(r.allocatedUsd >= r.idleUsd && r.idleUsd >= 0);
  }
  const hibernatedRows = rows.filter((r) => r.from >= hibernatedAt && r.to <= secondStart);
  assert.ok(hibernatedRows.length >= 1, 'intervals while hibernated');
  for (const r of hibernatedRows) assert.equal(r.replicaSeconds, 0, 'nothing held while hibernated');

  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'client/cli/main.ts', 'cost', id, '--json'], {
    cwd: repoRoot,
    env: h.env,
  });
  const report = JSON.parse(stdout);
  for (const key of ['per1kUsd', 'perDayUsd', 'projectedMonthUsd', 'idleUsd', 'replicaSeconds', 'requests'])
    assert.equal(typeof report[key], 'number', `${key} in ${stdout}`);
  assert.ok(report.requests >= 25);
  assert.ok(report.perDayUsd > 0 && report.projectedMonthUsd > report.perDayUsd * 28);
  const allocated = rows.reduce((s, r) => s + r.allocatedUsd, 0);
  assert.ok(report.allocatedUsd >= allocated - 1e-12, 'the report covers at least the rows read above');

  const serving = await h.ferry.serving(id);
  assert.ok(serving?.cost, 'the monitor status carries the cost');
  assert.ok(serving.cost.replicaSeconds > 0);
  const status = await run(process.execPath, ['--import', 'tsx', 'client/cli/main.ts', 'status', id], {
    cwd: repoRoot,
    env: h.env,
  });
  assert.match(status.stdout, /Cost: \$[0-9.e-]+ per 1k, \$[0-9.e-]+\/day/);
  await h.ferry.undeploy(id);
});
