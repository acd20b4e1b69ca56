/**
 * Recommendations through the API, end to end on the real stack: a deployment served by a fixed three
 * replicas, with a day of priced intervals in its record that one replica could have served, is advised
 * to autoscale; `ferry apply` applies it through the same scaling change as `ferry scale` (the gateway
 * then autoscales 1–3), audited; applying it again, or an id that no longer holds, is refused with the
 * reason and changes nothing; without a key, 401.
 *
 * It runs against a scratch database (all migrations applied), so the shared one is left as it is.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startApiServer } from '../../client/api/server';
import { AnalyticsRepository } from '../../lib/db/analyticsRepository';
import { closePools, getPool } from '../../lib/db/pool';
import { type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';
import { scratchDatabase } from '../helpers/scratchDatabase';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');
const HOUR = 3_600_000;
const scratch = scratchDatabase('recs');

let h: FerryHarness;
let api: Awaited<ReturnType<typeof startApiServer>>;
before(async () => {
  await scratch.create();
  h = await startHarness('recs');
  await h.startWorker();
  api = await startApiServer(h.config, await freePort());
});
after(async () => {
  await api?.close();
  await h?.close();
  await closePools();
  await scratch.drop();
});

async function call(method: string, p: string, key: string | null = h.adminKey) {
  const res = await fetch(`${api.url}${p}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), 'content-type': 'application/json' },
    ...(method === 'POST' ? { body: '{}' } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

test('advised to autoscale, applied once through the scaling change, refused after', { timeout: 180_000 }, async () => {
  const name = `recs-${h.runId}`;
  const started = await h.ferry.deploy(await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3 }), {
    model: name,
    replicas: 3,
  });
  const id = started.deploymentId;
  await h.ferry.waitForResult(id);
  assert.equal((await h.gatewayStatus(id)).body.autoscaling, null, 'a fixed count to begin with');

  // A day of record: $0.30 an hour for three replicas, 1 request/s at 20 ms p95 (0.02 in flight).
  const store = new AnalyticsRepository(getPool(scratch.url));
  const end = Date.now() - 60_000;
  for (let i = 24; i >= 1; i--) {
    await store.recordCost(id, {
      from: end - i * HOUR,
      to: end - (i - 1) * HOUR,
      replicaSeconds: 3 * 3600,
      byRevision: {},
      allocatedUsd: 0.3,
      idleUsd: 0.29,
      requests: 3600,
      errors: 0,
      busySeconds: 72,
      coldStarts: 0,
      coldStartMs: null,
      per1kUsd: 0.3 / 3.6,
      latencyP95Ms: 20,
      pricing: {
        price: { usdPerHour: 0.1, vcpus: 1, memoryGiB: 1, source: 'test' },
        request: { cpus: 1, memoryGiB: 1 },
      },
    });
  }

  const listed = await call('GET', `/api/deployments/${id}/recommendations`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  const rightSize = listed.body.recommendations.find((r: any) => r.kind === 'right-size');
  assert.ok(rightSize, JSON.stringify(listed.body));
  assert.deepEqual(rightSize.change, { autoscaling: { minReplicas: 1, maxReplicas: 3 } });
  assert.ok(rightSize.monthlySavingUsd > 100, `saving ${rightSize.monthlySavingUsd}`);
  assert.equal((await call('GET', `/api/deployments/${id}/recommendations`, null)).status, 401);

  // The CLI lists and applies it, with this machine's key.
  const env = { ...h.env, FERRY_API_URL: api.url, FERRY_API_KEY: h.adminKey };
  const cli = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'client/cli/main.ts', ...args], { cwd: repoRoot, env });
  const shown = await cli('recommendations', id, '--json');
  assert.ok(JSON.parse(shown.stdout).recommendations.some((r: any) => r.id === rightSize.id));
  const applied = await cli('apply', rightSize.id);
  assert.match(applied.stdout, new RegExp(`^applied ${rightSize.id.replace(/\./g, '\\.')}: autoscale 1–3 replicas`));
  const after = (await h.gatewayStatus(id)).body;
  assert.equal(after.autoscaling?.minReplicas, 1);
  assert.equal(after.autoscaling?.maxReplicas, 3);

  // Never twice, and the audit log says who applied it.
  const again = await call('POST', `/api/recommendations/${encodeURIComponent(rightSize.id)}/apply`);
  assert.equal(again.status, 409);
  assert.match(again.body.error, /was applied already/);
  const audit = await call('GET', `/api/audit?deployment=${id}`);
  assert.ok(audit.body.some((e: any) => e.action === 'recommendation-applied' && e.detail.id === rightSize.id));
  // An id of the right shape whose advice does not hold now; and one of no shape at all.
  const stale = await call('POST', `/api/recommendations/${id}.right-size.00000000/apply`);
  assert.equal(stale.status, 409);
  assert.match(stale.body.error, /no longer holds/);
  assert.equal((await call('POST', '/api/recommendations/nonsense/apply')).status, 404);
  assert.equal((await h.gatewayStatus(id)).body.autoscaling?.maxReplicas, 3, 'refusals changed nothing');
  await h.ferry.undeploy(id);
});
