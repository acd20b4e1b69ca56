/**
 * The monitor workflow collects metrics into Postgres, hibernates an idle deployment (its replicas
 * stop), and the next request wakes it: held, then answered.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isAlive } from '../../client/services';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
before(async () => {
  h = await startHarness('hibernate');
  await h.startWorker();
});
after(async () => h?.close());

test('idle deployment hibernates; the next request wakes it and is answered', async () => {
  const name = `hib-${h.runId}`;
  const started = await h.ferry.deploy(
    await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3, seed: 2 }),
    {
      model: name,
      monitor: { intervalMs: 1000, idleHibernateMs: 4000 },
    },
  );
  const live = await h.ferry.waitForResult(started.deploymentId);
  const request = { inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] };
  const first = await h.ferry.infer(started.deploymentId, request);

  const running = await h.gatewayStatus(started.deploymentId);
  const pidsBefore: number[] = running.body.replicas.map((r: { pid: number }) => r.pid);
  assert.equal(pidsBefore.length, 1);

  const hibernated = await eventually(
    'the monitor to hibernate the idle deployment',
    async () => {
      const m = await h.ferry.serving(started.deploymentId);
      return m && m.hibernations >= 1 ? m : undefined;
    },
    30_000,
  );
  assert.equal(hibernated.servingState, 'hibernated');
  assert.ok(hibernated.lastSample!.requestCount >= 1, 'the request was counted');
  const gw = await h.gatewayStatus(started.deploymentId);
  assert.equal(gw.body.state, 'hibernated');
  assert.equal(gw.body.replicas.length, 0);
  for (const pid of pidsBefore) assert.equal(isAlive(pid), false, `replica ${pid} stopped`);

  const repo = new FerryRepository(getPool(h.config.postgres.url));
  assert.equal((await repo.getDeployment(started.deploymentId))?.state, 'hibernated');
  const samples = await repo.recentMetrics(started.deploymentId);
  assert.ok(samples.length >= 2, 'metrics collected on the interval');
  assert.ok(samples.some((s) => s.requestsDelta >= 1));

  // Wake on traffic: the request is held while a replica starts, then answered identically.
  const woken = await h.ferry.infer(started.deploymentId, request);
  assert.deepEqual(woken.outputs, first.outputs);
  const after = await h.gatewayStatus(started.deploymentId);
  assert.equal(after.body.state, 'running');
  assert.ok(after.body.coldStarts >= 1);
  await eventually(
    'the monitor to record the wake',
    async () => {
      const ev = await getPool(h.config.postgres.url).query(
        `SELECT kind FROM deployment_events WHERE deployment_id = $1 ORDER BY id`,
        [started.deploymentId],
      );
      const kinds = ev.rows.map((r) => r.kind);
      return kinds.includes('hibernated') && kinds.lastIndexOf('woke') > kinds.indexOf('hibernated')
        ? kinds
        : undefined;
    },
    15_000,
  );
  assert.ok(live.endpoint);
  await h.ferry.undeploy(started.deploymentId);
});
