/**
 * The deploy stage plans before it deploys, through the real pipeline (worker, Temporal, Postgres, the
 * gateway): a review-mode deploy shows each plan's considered deployment options while it waits, an
 * unknown option is refused at once naming it, the approved plan and option are deployed and serve, and
 * the decision is in the status Query, in Postgres and in the FerryTarget search attribute.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DeploymentPlanRepository } from '../../lib/db/deploymentPlanRepository';
import { getPool } from '../../lib/db/pool';
import { ferryTargetKey } from '../../workflows/searchAttributes';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';
import { assertHistoriesReplay } from '../helpers/replay';

let h: FerryHarness;
before(async () => {
  h = await startHarness('options');
  await h.startWorker();
});
after(async () => h?.close());

test('a review-mode deploy shows its options, refuses an unknown one and deploys the approved one', async () => {
  const name = `op-${h.runId}`;
  const started = await h.ferry.deploy(await h.writeModel(name), {
    model: name,
    mode: 'review',
    approvalTimeoutMs: 10 * 60_000,
    cost: { constraints: { sloP95Ms: 80 } },
  });
  const waiting = await eventually(
    `${name} to wait for approval`,
    async () => {
      const s = await h.ferry.status(started.deploymentId);
      if (s.phase === 'failed') throw new Error(`failed: ${s.error}`);
      return s.phase === 'awaiting-approval' ? s : undefined;
    },
    90_000,
  );
  const approvable = (waiting.plans ?? []).filter((p) => p.withinBudget !== false).map((p) => p.id);
  assert.deepEqual(Object.keys(waiting.deploymentOptions ?? {}).sort(), [...approvable].sort(), 'a table per plan');
  const table = waiting.deploymentOptions!.original;
  assert.equal(table.constraints.sloP95Ms, 80);
  assert.match(table.profile.description, /no --traffic given/);
  // This worker's machine, its cost not set, is the one deployable option; the clouds show "not configured".
  const local = table.options.find((o) => o.id === table.chosen)!;
  assert.equal(local.target, 'local');
  assert.ok(table.options.some((o) => o.provider === 'aws' && o.deployNote === 'not configured'));

  await assert.rejects(
    h.ferry.approve(started.deploymentId, 'original', 'alice', 'vm-spot:aws:nowhere-1:m0.none'),
    /approval refused: unknown deployment option "vm-spot:aws:nowhere-1:m0\.none" for plan "original"; choose one of: local:/,
  );
  const cloud = table.options.find((o) => o.feasible && !o.deployable)!;
  await assert.rejects(
    h.ferry.approve(started.deploymentId, 'original', 'alice', cloud.id),
    /cannot be deployed from here \(not configured\)/,
  );
  const chosen = await h.ferry.approve(started.deploymentId, 'original', 'alice', local.id);
  assert.deepEqual([chosen.plan, chosen.option], ['original', local.id]);

  const done = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(done.phase, 'live');
  assert.deepEqual(
    [done.deploymentDecision?.plan, done.deploymentDecision?.option, done.deploymentDecision?.target],
    ['original', local.id, 'local'],
  );
  assert.equal(done.deploymentDecision?.approvedBy, 'alice');
  const gateway = await h.gatewayStatus(started.deploymentId);
  assert.equal(gateway.status, 200, 'served by the local gateway');

  const row = await new DeploymentPlanRepository(getPool(h.config.postgres.url)).decision(started.deploymentId);
  assert.equal(row?.option, local.id);
  assert.equal(row?.optimizationPlan, 'original');
  assert.equal(row?.source, 'approved');
  assert.equal(row?.plan.chosen, table.chosen, 'the whole plan is stored');
  assert.ok(row?.plan.options.find((o) => o.id === local.id)?.schedule, 'with what the table leaves out');

  const described = await h.ferry.temporal.workflow.getHandle(started.workflowId).describe();
  assert.equal(described.typedSearchAttributes.get(ferryTargetKey), 'local');

  await h.ferry.undeploy(started.deploymentId);
  await assertHistoriesReplay(h.ferry.temporal, [started.workflowId]);
});
