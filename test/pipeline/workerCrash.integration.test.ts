/**
 * The worker is killed with SIGKILL in the middle of the pipeline and started again: the deployment
 * completes once — one image, one set of replicas, no orphan processes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
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

/** Whether a process is alive (and not a zombie awaiting its parent). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The replicas this test's gateway runs, whatever it believes: containers whose bundle is under its
 * state dir (lib/container/container.ts writes each one's container.json) and whose init is alive,
 * plus replicas run as plain processes (FERRY_CONTAINER_RUNTIME=process), found by their arguments.
 * A standby container waiting for a cold start is counted apart: it is no replica yet.
 */
function liveReplicas(): { replicas: number[]; standby: number[] } {
  const bundles = path.join(h.tmpDir, 'state', 'gateway', 'containers');
  const replicas: number[] = [];
  const standby: number[] = [];
  for (const id of existsSync(bundles) ? readdirSync(bundles) : []) {
    const file = path.join(bundles, id, 'container.json');
    if (!existsSync(file)) continue;
    const record = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; logPath: string };
    if (!alive(record.pid)) continue;
    (record.logPath.includes(`${path.sep}_standby${path.sep}`) ? standby : replicas).push(record.pid);
  }
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  for (const l of ps.split('\n')) {
    if (l.includes(h.tmpDir) && l.includes('server.js')) replicas.push(Number(l.trim().split(/\s+/)[0]));
  }
  return { replicas, standby };
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
  // A replica started from a taken standby keeps its standby log, so it may be listed as either.
  const gatewayPids: number[] = gw.body.replicas.map((r: { pid: number }) => r.pid).sort();
  const live = liveReplicas();
  const running = [...live.replicas, ...live.standby];
  for (const pid of gatewayPids) assert.ok(running.includes(pid), `replica ${pid} the gateway lists is running`);
  assert.deepEqual(
    live.replicas.filter((pid) => !gatewayPids.includes(pid)),
    [],
    'no orphan replica processes',
  );
  assert.ok(running.length <= gatewayPids.length + 1, `at most one standby beside the replicas: ${running}`);

  const answer = await h.ferry.infer(started.deploymentId, {
    inputs: [{ name: 'input', shape: [1, 512], datatype: 'FP32', data: new Array(512).fill(0.5) }],
  });
  assert.deepEqual(answer.outputs[0].shape, [1, 10]);

  await h.ferry.undeploy(started.deploymentId);
  await eventually(
    'replicas to exit',
    async () => {
      const running = liveReplicas();
      return (
        [...running.replicas, ...running.standby].every((pid) => !gatewayPids.includes(pid)) &&
        running.replicas.length === 0
      );
    },
    15_000,
  );
});
