/**
 * Canary releases through the pipeline on the real stack (Temporal, Postgres, S3, registry), a real
 * gateway and real replicas: v1 deployed one-click, v2 as a 50% canary of it (SDK) — both revisions
 * answer, no second monitor — then promoted under load with no failed request while v1's revision
 * drains away; v3 as a 20% canary through the CLI, an unknown revision refused, rolled back; a canary of
 * a model with nothing live refused before anything runs (SDK, CLI, and the deploy activity itself);
 * a base deployment undeployed while its canary is in the pipeline fails the deploy stage at once; and
 * the runs' histories replay against the workflow code.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { WorkflowNotFoundError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker } from '@temporalio/worker';
import { type DeployResult, deployToLocalTarget } from '../../activities/deploy';
import { isAlive } from '../../client/services';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { canaryRevisionName, type DeploymentStatus, workflowIds } from '../../workflows/types';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');
const DIMS = { inputDim: 16, hiddenDims: [32], outputDim: 4 };
const INPUT = Array.from({ length: 16 }, (_, i) => (i % 5) - 2 + i / 16);

describe('canary releases through the pipeline', () => {
  let h: FerryHarness;
  let repo: FerryRepository;
  const model = () => `can-${h.runId}`;
  let v1: DeploymentStatus;
  let v2: DeploymentStatus;
  let baseId: string;

  async function ferry(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    try {
      const { stdout, stderr } = await run(ferryBin, args, { env: h.env, timeout: 180_000 });
      return { code: 0, out: stdout, err: stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
    }
  }
  async function infer(
    url: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; revision: string | null; replica: string | null; output?: number[] }> {
    // With this machine's key: inference needs one (auth is on by default).
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...h.adminAuth, ...headers },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 16], datatype: 'FP32', data: INPUT }] }),
    });
    const body = (await res.json().catch(() => undefined)) as { outputs?: Array<{ data: number[] }> } | undefined;
    return {
      status: res.status,
      revision: res.headers.get('x-ferry-revision'),
      replica: res.headers.get('x-ferry-replica'),
      output: body?.outputs?.[0]?.data,
    };
  }
  const gateway = async (id: string) => (await h.gatewayStatus(id)).body;
  const pidsOf = (g: any, revision: string): number[] =>
    g.replicas
      .filter((r: any) => r.revision === revision)
      .map((r: any) => r.pid)
      .sort();
  async function events(deploymentId: string): Promise<Array<{ kind: string; detail: any }>> {
    const res = await getPool(h.config.postgres.url).query(
      `SELECT kind, detail FROM deployment_events WHERE deployment_id = $1 ORDER BY id`,
      [deploymentId],
    );
    return res.rows;
  }

  before(async () => {
    h = await startHarness('canary');
    // The deploy activity also runs in this process (MockActivityEnvironment, below): it calls the
    // gateway with this process's key, so give it the harness's (as the worker has in its state dir).
    process.env.FERRY_API_KEY ??= h.adminKey;
    await h.startWorker();
    repo = new FerryRepository(getPool(h.config.postgres.url));
  });
  after(async () => h?.close());

  test("v2 as a 50% canary of v1 (SDK): a revision of v1's deployment, both answer, no second monitor", {
    timeout: 240_000,
  }, async () => {
    const started1 = await h.ferry.deploy(await h.writeModel('v1', { ...DIMS, seed: 1 }), { model: model() });
    v1 = await h.ferry.waitForResult(started1.deploymentId);
    baseId = v1.deploymentId;
    const before = await gateway(baseId);
    const v1Pids = pidsOf(before, 'default');
    assert.equal(v1Pids.length, 1);

    const started2 = await h.ferry.deploy(await h.writeModel('v2', { ...DIMS, seed: 2 }), {
      model: model(),
      canary: { percent: 50 },
    });
    v2 = await h.ferry.waitForResult(started2.deploymentId);
    const revision = canaryRevisionName(v2.version);
    assert.equal(revision, v2.version);
    assert.equal(v2.phase, 'live');
    assert.deepEqual(
      v2.stages.map((s) => s.state),
      ['done', 'done', 'done', 'done', 'done'],
    );
    assert.deepEqual(v2.canary, {
      baseDeploymentId: baseId,
      revision,
      percent: 50,
      split: { default: 50, [revision]: 50 },
      baseMonitorWorkflowId: workflowIds.monitor(model(), v1.version),
    });
    assert.equal(v2.endpoint, v1.endpoint, "the canary's endpoint is its base deployment's");
    assert.equal(v2.inferUrl, v1.inferUrl);
    assert.equal(v2.monitorWorkflowId, workflowIds.monitor(model(), v1.version));
    assert.match(v2.stages[3].detail!, new RegExp(`revision ${revision} of ${baseId} with 50% of its traffic`));
    await assert.rejects(
      h.ferry.temporal.workflow.getHandle(workflowIds.monitor(model(), v2.version)).describe(),
      WorkflowNotFoundError,
      'no second monitor',
    );
    assert.equal((await h.ferry.serving(baseId))?.servingState, 'running', "the base deployment's monitor runs");
    assert.equal((await h.gatewayStatus(v2.deploymentId)).status, 404, 'no deployment of its own');

    const g = await gateway(baseId);
    assert.deepEqual(
      g.revisions.map((r: any) => [r.name, r.percent, r.readyReplicas]),
      [
        ['default', 50, 1],
        [revision, 50, 1],
      ],
    );
    assert.deepEqual(pidsOf(g, 'default'), v1Pids, "v1's replica was not restarted");
    assert.equal(g.revisions[1].image.digest, v2.image!.digest);

    // Both revisions answer through the one endpoint, each with its own model.
    const outcomes = await Promise.all(Array.from({ length: 40 }, () => infer(v1.inferUrl!)));
    assert.deepEqual(
      outcomes.filter((o) => o.status !== 200),
      [],
    );
    assert.deepEqual([...new Set(outcomes.map((o) => o.revision))].sort(), ['default', revision].sort());
    const byRevision = new Map(outcomes.map((o) => [o.revision, JSON.stringify(o.output)]));
    assert.notEqual(byRevision.get('default'), byRevision.get(revision), 'v1 and v2 compute different outputs');
    // Inference "of v2" asks for its revision by name.
    const ofV2 = await h.ferry.infer(v2.deploymentId, {
      inputs: [{ name: 'input', shape: [1, 16], datatype: 'FP32', data: INPUT }],
    });
    assert.equal(JSON.stringify(ofV2.outputs[0].data), byRevision.get(revision));

    // Postgres: the canary's row points at the base; events on both.
    const row = await repo.getDeployment(v2.deploymentId);
    assert.equal(row?.state, 'canary');
    assert.equal(row?.endpoint, v1.endpoint);
    assert.equal(row?.imageDigest, v2.image!.digest);
    assert.deepEqual([row?.config.canaryOf, row?.config.revision], [baseId, revision]);
    const added = (await events(baseId)).filter((e) => e.kind === 'canary-added');
    assert.equal(added.length, 1);
    assert.deepEqual(
      [added[0].detail.revision, added[0].detail.deployment, added[0].detail.percent],
      [revision, v2.deploymentId, 50],
    );
    assert.equal((await repo.getDeployment(baseId))?.state, 'running');

    // `ferry list` says where each serves.
    const list = await h.ferry.list();
    assert.equal(
      list.find((e) => e.deploymentId === v2.deploymentId)?.serving,
      `revision ${revision} of ${baseId}, 50%`,
    );
    assert.equal(list.find((e) => e.deploymentId === baseId)?.serving, `running (default 50%, ${revision} 50%)`);

    // The deploy activity again (a retry) with the same image: nothing new, no second event.
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const mv = await repo.findModelVersion(model(), v2.version);
    const imageId = (
      await getPool(h.config.postgres.url).query(`SELECT id FROM images WHERE digest = $1`, [v2.image!.digest])
    ).rows[0].id;
    const again: DeployResult = await env.run(deployToLocalTarget, {
      deploymentId: v2.deploymentId,
      modelVersionId: mv!.id,
      imageId: Number(imageId),
      image: v2.image!,
      model: model(),
      replicas: 1,
      monitor: { intervalMs: 15_000, idleHibernateMs: 900_000 },
      canary: { of: baseId, percent: 50, version: v2.version },
    });
    assert.deepEqual(again.canary?.split, { default: 50, [revision]: 50 });
    const after = await gateway(baseId);
    assert.deepEqual(
      [pidsOf(after, 'default'), pidsOf(after, revision)],
      [pidsOf(g, 'default'), pidsOf(g, revision)],
      'no replica started or stopped',
    );
    assert.equal((await events(baseId)).filter((e) => e.kind === 'canary-added').length, 1);
  });

  test("promote under load: all traffic to v2, v1's revision drained and removed, no failed request", {
    timeout: 120_000,
  }, async () => {
    const revision = v2.canary!.revision;
    const before = await gateway(baseId);
    const [v1Pid] = pidsOf(before, 'default');
    const [v2Pid] = pidsOf(before, revision);
    const outcomes: Array<Awaited<ReturnType<typeof infer>>> = [];
    let loading = true;
    const clients = Array.from({ length: 4 }, async () => {
      while (loading)
        outcomes.push(
          await infer(v1.inferUrl!).catch((err: Error) => ({ status: 0, revision: err.message, replica: null })),
        );
    });
    await new Promise((r) => setTimeout(r, 300));
    const change = await h.ferry.promote(baseId, revision);
    const promotedAt = outcomes.length;
    await new Promise((r) => setTimeout(r, 300));
    loading = false;
    await Promise.all(clients);

    assert.ok(outcomes.length > 20, `a modest load: ${outcomes.length} requests`);
    assert.deepEqual(
      outcomes.filter((o) => o.status < 200 || o.status > 299),
      [],
      'no failed request',
    );
    assert.ok(
      outcomes.slice(0, promotedAt).some((o) => o.revision === 'default'),
      'v1 served before the promotion',
    );
    assert.deepEqual([...new Set(outcomes.slice(promotedAt).map((o) => o.revision))], [revision], 'only v2 after it');
    assert.deepEqual([change.kept, change.removed], [revision, ['default']]);
    assert.deepEqual(
      change.status.revisions.map((r) => [r.name, r.percent]),
      [[revision, 100]],
    );
    const g = await gateway(baseId);
    assert.deepEqual(
      g.revisions.map((r: any) => r.name),
      [revision],
    );
    assert.deepEqual(pidsOf(g, revision), [v2Pid], "v2's replica was not restarted");
    await eventually("v1's replica to stop", async () => !isAlive(v1Pid));
    assert.equal(g.image.digest, v2.image!.digest);

    assert.equal((await repo.getDeployment(v2.deploymentId))?.state, 'promoted');
    assert.equal(
      (await repo.getDeployment(baseId))?.imageDigest,
      v2.image!.digest,
      "the base deployment serves v2's image now",
    );
    assert.deepEqual(
      (await events(baseId)).filter((e) => e.kind === 'promoted').map((e) => e.detail),
      [{ revision, removed: ['default'] }],
    );
    const list = await h.ferry.list();
    assert.equal(list.find((e) => e.deploymentId === baseId)?.serving, `running (${revision} 100%)`);
    assert.equal(
      list.find((e) => e.deploymentId === v2.deploymentId)?.serving,
      `revision ${revision} of ${baseId}, 100%`,
    );

    const again = await h.ferry.promote(baseId, revision);
    assert.deepEqual(again.removed, [], 'promoting the only revision changes nothing');
    assert.deepEqual(pidsOf(await gateway(baseId), revision), [v2Pid]);
  });

  test('v3 as a 20% canary through the CLI; an unknown revision refused; rolled back to v2', {
    timeout: 240_000,
  }, async () => {
    const v2Revision = v2.canary!.revision;
    const [v2Pid] = pidsOf(await gateway(baseId), v2Revision);
    const deployed = await ferry(
      'deploy',
      await h.writeModel('v3', { ...DIMS, seed: 3 }),
      '--name',
      model(),
      '--canary',
      '20%',
    );
    assert.equal(deployed.code, 0, deployed.out + deployed.err);
    assert.match(deployed.out, /as a canary with 20% of the traffic/);
    const v3Id = /Deploying (\S+)/.exec(deployed.out)![1];
    const v3 = await h.ferry.status(v3Id);
    const v3Revision = v3.canary!.revision;
    assert.match(
      deployed.out,
      new RegExp(
        `Canary:\\s+revision ${v3Revision} of ${baseId}, 20% of its traffic \\(split ${v2Revision}=80%, ${v3Revision}=20%\\)`,
      ),
    );
    const g = await gateway(baseId);
    assert.deepEqual(
      g.revisions.map((r: any) => [r.name, r.percent]),
      [
        [v2Revision, 80],
        [v3Revision, 20],
      ],
    );
    assert.deepEqual(pidsOf(g, v2Revision), [v2Pid]);
    const [v3Pid] = pidsOf(g, v3Revision);
    assert.equal((await infer(v1.inferUrl!, { 'x-ferry-variant': v3Revision })).revision, v3Revision);

    const unknown = await ferry('promote', baseId, '--revision', 'nope');
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.err.trim(),
      `ferry: promote refused: deployment ${baseId} has no revision "nope" (it has: ${v2Revision}, ${v3Revision}); nothing changed`,
    );
    assert.deepEqual((await gateway(baseId)).traffic.split, { [v2Revision]: 80, [v3Revision]: 20 });

    // The canary version's own id leads to its base deployment where that makes sense, and says so where not.
    const traffic = await ferry('traffic', v3Id, '--json');
    assert.equal(traffic.code, 0, traffic.err);
    assert.equal(JSON.parse(traffic.out).id, baseId);
    const undeploy = await ferry('undeploy', v3Id);
    assert.equal(undeploy.code, 1);
    assert.match(
      undeploy.err,
      new RegExp(
        `${v3Id} is revision "${v3Revision}" of deployment ${baseId}, not a deployment of its own: remove it with \`ferry rollback ${baseId}\``,
      ),
    );
    assert.equal((await gateway(baseId)).revisions.length, 2);

    const status = await ferry('status', v3Id);
    assert.match(status.out, new RegExp(`Serving: revision ${v3Revision} of ${baseId}, 20% of its traffic now`));

    const rolled = await ferry('rollback', baseId);
    assert.equal(rolled.code, 0, rolled.out + rolled.err);
    assert.match(
      rolled.out,
      new RegExp(
        `Rolled ${baseId} back to revision ${v2Revision}: it serves all of the traffic; removed ${v3Revision}`,
      ),
    );
    const after = await gateway(baseId);
    assert.deepEqual(
      after.revisions.map((r: any) => [r.name, r.percent]),
      [[v2Revision, 100]],
    );
    assert.deepEqual(pidsOf(after, v2Revision), [v2Pid], "v2's replica was not restarted");
    await eventually("v3's replica to stop", async () => !isAlive(v3Pid));
    assert.equal((await repo.getDeployment(v3Id))?.state, 'removed');
    assert.equal((await repo.getDeployment(v2.deploymentId))?.state, 'promoted');
    assert.equal((await repo.getDeployment(baseId))?.imageDigest, v2.image!.digest);
    assert.deepEqual(
      (await events(baseId)).filter((e) => e.kind === 'rolled-back').map((e) => e.detail),
      [{ revision: v2Revision, removed: [v3Revision] }],
    );

    const statusAfter = await ferry('status', v3Id);
    assert.match(statusAfter.out, new RegExp(`Serving: no longer: ${baseId} has no revision ${v3Revision} now`));
    const list = await ferry('list');
    assert.match(list.out, new RegExp(`${v3Id}\\s+live\\s+COMPLETED\\s+\\S+\\s+not served`));
    const nothing = await ferry('rollback', baseId);
    assert.equal(nothing.code, 1);
    assert.match(
      nothing.err,
      new RegExp(
        `rollback refused: deployment ${baseId} serves one revision \\("${v2Revision}"\\) and has no canary to remove`,
      ),
    );
  });

  test('a canary of a model with no live deployment is refused before anything runs', {
    timeout: 120_000,
  }, async () => {
    const lonely = `lonely-${h.runId}`;
    const file = await h.writeModel('lonely', { ...DIMS, seed: 4 });
    await assert.rejects(
      h.ferry.deploy(file, { model: lonely, canary: { percent: 10 } }),
      new RegExp(
        `^Error: canary refused: model "${lonely}" has no live deployment to add it to \\(the gateway at http://127\\.0\\.0\\.1:\\d+ serves none of it\\); deploy it first without --canary`,
      ),
    );
    const cli = await ferry('deploy', file, '--name', lonely, '--canary', '10');
    assert.equal(cli.code, 1);
    assert.match(cli.err, new RegExp(`^ferry: canary refused: model "${lonely}" has no live deployment`));
    const list = await h.ferry.list();
    assert.equal(list.filter((e) => e.model === lonely).length, 0, 'no run was started');
    await assert.rejects(
      h.ferry.deploy(file, { model: model(), canary: { percent: 10, of: 'no-such-deployment' } }),
      /^Error: canary refused: no deployment "no-such-deployment"/,
    );
    await assert.rejects(
      h.ferry.deploy(file, { model: model(), canary: { percent: 120 } }),
      /percent must be a number from 0 to 100, got 120/,
    );
    const badFlag = await ferry('deploy', file, '--name', model(), '--canary-of', baseId);
    assert.match(badFlag.err, /--canary-of needs --canary PERCENT/);

    // The deploy stage checks again (the base may go away while the pipeline runs): not retried.
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    await assert.rejects(
      env.run(deployToLocalTarget, {
        deploymentId: `${lonely}-x`,
        modelVersionId: 0,
        imageId: 0,
        image: {
          registry: h.config.registry.url,
          repository: 'ferry/none',
          tag: 'x',
          digest: 'sha256:00',
          sizeBytes: 0,
        },
        model: lonely,
        replicas: 1,
        monitor: { intervalMs: 15_000, idleHibernateMs: 900_000 },
        canary: { of: `${lonely}-gone`, percent: 10, version: 'x' },
      }),
      (err: any) => {
        assert.equal(err.nonRetryable, true);
        assert.equal(err.type, 'NoLiveDeployment');
        assert.match(
          err.message,
          new RegExp(`cannot deploy ${lonely} x as a canary of deployment "${lonely}-gone": it is not live`),
        );
        return true;
      },
    );
  });

  test('the base deployment undeployed while its canary is in the pipeline: the deploy stage fails at once, saying why', {
    timeout: 180_000,
  }, async () => {
    const started = await h.ferry.deploy(await h.writeModel('v4', { ...DIMS, seed: 5 }), {
      model: model(),
      canary: { percent: 10 },
    });
    await h.ferry.undeploy(baseId);
    await assert.rejects(
      h.ferry.waitForResult(started.deploymentId),
      new RegExp(`deploy failed: cannot deploy ${model()} \\S+ as a canary of deployment "${baseId}": it is not live`),
    );
    const status = await h.ferry.status(started.deploymentId);
    assert.deepEqual(
      status.stages.map((s) => s.state),
      ['done', 'done', 'done', 'failed', 'pending'],
    );
    const history = await h.ferry.temporal.workflow.getHandle(started.workflowId).fetchHistory();
    const attempts = (history.events ?? [])
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.equal(attempts.at(-1), 1, 'the deploy activity was not retried');
  });

  test('the runs replay against the workflow code: one-click without the canary input, and canaries', {
    timeout: 120_000,
  }, async () => {
    const histories = [];
    for (const id of [v1.deploymentId, v2.deploymentId]) {
      const s = await h.ferry.status(id);
      histories.push({
        workflowId: id,
        history: await h.ferry.temporal.workflow.getHandle(workflowIds.deploy(s.model, s.version)).fetchHistory(),
      });
    }
    const results = Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories);
    for await (const r of results) assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
  });
});
