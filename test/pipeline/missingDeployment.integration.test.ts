/**
 * A deployment removed behind Ferry's back — deleted straight through the gateway's control API — is
 * reconciled by the monitor: its status says `missing` (with how to deploy again), Postgres records the
 * state and a `missing` event, and the monitor run ends (it does not recreate what someone removed).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { authHeader } from '../../lib/auth/clientKey';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { workflowIds } from '../../workflows/types';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
before(async () => {
  h = await startHarness('missing');
  await h.startWorker();
});
after(async () => h?.close());

test('a deployment deleted through the gateway is marked missing, recorded, and its monitor ends', async () => {
  const name = `gone-${h.runId}`;
  const started = await h.ferry.deploy(
    await h.writeModel(name, { inputDim: 4, hiddenDims: [8], outputDim: 2, seed: 4 }),
    { model: name, monitor: { intervalMs: 1000, idleHibernateMs: 10 * 60_000 } },
  );
  await h.ferry.waitForResult(started.deploymentId);
  await eventually(
    'the monitor to collect once',
    async () => ((await h.ferry.serving(started.deploymentId))?.collections ?? 0) >= 1,
    30_000,
  );

  const deleted = await fetch(`${h.config.gateway.url}/_ferry/deployments/${started.deploymentId}`, {
    method: 'DELETE',
    headers: await authHeader(h.config),
  });
  assert.ok(deleted.ok, `delete: ${deleted.status}`);

  const missing = await eventually(
    'the monitor to notice',
    async () => {
      const m = await h.ferry.serving(started.deploymentId);
      return m?.servingState === 'missing' ? m : undefined;
    },
    30_000,
  );
  assert.match(missing.missing!.note, /removed from its target outside Ferry; monitoring stopped/);

  const monitor = h.ferry.temporal.workflow.getHandle(workflowIds.monitor(started.model, started.version));
  await eventually(
    'the monitor run to end',
    async () => (await monitor.describe()).status.name === 'COMPLETED',
    10_000,
  );

  const repo = new FerryRepository(getPool(h.config.postgres.url));
  assert.equal((await repo.getDeployment(started.deploymentId))?.state, 'missing');
  const events = await getPool(h.config.postgres.url).query(
    'SELECT kind, detail FROM deployment_events WHERE deployment_id = $1 ORDER BY id',
    [started.deploymentId],
  );
  const kinds = events.rows.map((r) => r.kind);
  assert.equal(kinds.filter((k) => k === 'missing').length, 1, `events: ${kinds.join(', ')}`);
  assert.equal(events.rows.find((r) => r.kind === 'missing').detail.previousState, 'running');
});
