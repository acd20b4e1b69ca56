/**
 * The worker is killed with SIGKILL in the middle of the pipeline and started again: the deployment
 * completes once — one image, one set of replicas, no orphan processes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
before(async () => {
  h = await startHarness('crash');
  await h.startWorker();
});
after(async () => h?.close());

/** Replica processes are inference servers whose unpacked image lives under this test's state dir. */
function replicaPids(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(h.tmpDir) && l.includes('server.js'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

test('SIGKILL of the worker mid-pipeline: the deployment completes exactly once', async () => {
  const name = `crash-${h.runId}`;
  // Large enough that the optimize and container stages take a few seconds.
  const file = await h.writeModel(name, { inputDim: 512, hiddenDims: [1024, 1024], outputDim: 10, seed: 4 });
  const started = await h.ferry.deploy(file, { model: name, replicas: 2 });

  const killedAt = await eventually(
    'the pipeline to reach optimize or container',
    async () => {
      const s = await h.ferry.status(started.deploymentId);
      return s.phase === 'optimize' || s.phase === 'container' ? s.phase : undefined;
    },
    60_000,
    50,
  );
  h.worker()!.kill('SIGKILL');
  await new Promise((r) => h.worker()!.once('exit', r));
  await h.startWorker();

  const status = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(status.phase, 'live', `killed during ${killedAt}`);

  const repo = new FerryRepository(getPool(h.config.postgres.url));
  const mv = await repo.findModelVersion(name, status.version);
  assert.equal(await repo.countImages(mv!.id), 1, 'one image');

  const gw = await h.gatewayStatus(started.deploymentId);
  assert.equal(gw.status, 200);
  assert.equal(gw.body.replicas.length, 2, 'one set of replicas');
  const pids = replicaPids();
  assert.deepEqual(
    pids.sort(),
    gw.body.replicas.map((r: { pid: number }) => r.pid).sort(),
    'no orphan replica processes',
  );

  const answer = await h.ferry.infer(started.deploymentId, {
    inputs: [{ name: 'input', shape: [1, 512], datatype: 'FP32', data: new Array(512).fill(0.5) }],
  });
  assert.deepEqual(answer.outputs[0].shape, [1, 10]);

  await h.ferry.undeploy(started.deploymentId);
  await eventually('replicas to exit', async () => replicaPids().length === 0, 15_000);
});
