/**
 * The deploy stage's planning in DeployModelWorkflow on the time-skipping test server, activities replaced
 * (the planning one runs the pure cost engine on the shipped catalog): one-click deploys the cheapest
 * deployable option, a named target limits the plan, nothing within the budget fails the run before an
 * image is built, and in review mode the approval names a plan and an option, both checked by the Update's
 * validator.
 */
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { parseProfile } from '../../lib/cost/engine';
import { approvePlanUpdate, deploymentStatusQuery } from '../../workflows/messages';
import { ferryTargetKey } from '../../workflows/searchAttributes';
import type { DeployModelInput, DeploymentPhase, DeploymentStatus } from '../../workflows/types';
import { workflowIds } from '../../workflows/types';
import { type Call, DEFAULT_PLAN, inputsOf, pipelineActivities } from './pipelineActivities';
import { startWorkflowTestBed, type WorkflowTestBed } from './timeSkipping';

const MINUTE = 60_000;
const LIMIT = { timeout: 60_000 };
const LOCAL = 'local:local:this-machine:this-machine-2vcpu';

// A server per test: after an Update the test server (1.38) stops skipping time (see deployModel.test.ts).
let bed: WorkflowTestBed;
let next: Promise<WorkflowTestBed> | undefined;
const started: DeployModelInput[] = [];
beforeEach(async () => {
  bed = await (next ?? startWorkflowTestBed());
  next = startWorkflowTestBed();
  next.catch(() => undefined);
});
afterEach(async () => {
  for (const input of started.splice(0))
    await bed.env.client.workflow
      .getHandle(workflowIds.monitor(input.model, input.version))
      .terminate('test done')
      .catch(() => undefined);
  await bed?.teardown();
});
after(async () => {
  await (await next?.catch(() => undefined))?.teardown();
});

let runs = 0;
function deployInput(overrides: Partial<DeployModelInput> = {}): DeployModelInput {
  const version = `p${++runs}`;
  return {
    deploymentId: `mlp-${version}`,
    model: 'mlp',
    version,
    upload: { objectKey: `uploads/mlp-${version}.onnx`, sha256: 'c0ffee', sizeBytes: 400_000, fileName: 'mlp.onnx' },
    mode: 'one-click',
    approvalTimeoutMs: 30 * MINUTE,
    replicas: 1,
    monitor: { intervalMs: 10 * MINUTE, idleHibernateMs: 60 * MINUTE },
    ...overrides,
  };
}

function start(taskQueue: string, input: DeployModelInput): Promise<WorkflowHandle> {
  started.push(input);
  return bed.env.client.workflow.start('deployModelWorkflow', {
    taskQueue,
    workflowId: workflowIds.deploy(input.model, input.version),
    args: [input],
  });
}

async function reachPhase(handle: WorkflowHandle, phase: DeploymentPhase): Promise<DeploymentStatus> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await handle.query(deploymentStatusQuery);
    if (status.phase === phase) return status;
    assert.ok(Date.now() < deadline, `the run never reached ${phase} (it is at ${status.phase})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function refusal(handle: WorkflowHandle, plan: string, option?: string): Promise<string> {
  const err = await handle
    .executeUpdate(approvePlanUpdate, { args: [{ plan, ...(option ? { option } : {}), approvedBy: 'test' }] })
    .then(
      () => assert.fail(`approving ${plan}/${option} was accepted`),
      (e: unknown) => e,
    );
  assert.ok(err instanceof WorkflowUpdateFailedError, `refused as a failed Update, got ${String(err)}`);
  return (err.cause as Error).message;
}

describe('one-click', () => {
  test('plans every approvable plan, deploys the cheapest deployable option, and records it', LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      const input = deployInput();
      const handle = await start(queue, input);
      const result: DeploymentStatus = await handle.result();
      assert.equal(result.phase, 'live');
      const [planned] = inputsOf(calls, 'planDeploymentOptions');
      assert.deepEqual(
        planned.candidates.map((c) => c.id),
        ['original', DEFAULT_PLAN],
        'the plans within the accuracy budget, each with its measured row',
      );
      assert.deepEqual(Object.keys(result.deploymentOptions ?? {}), ['original', DEFAULT_PLAN]);
      // Planned before the image was built (the approval needs the table).
      const order = calls.map((c) => c.activity);
      assert.ok(order.indexOf('planDeploymentOptions') < order.indexOf('buildAndPushModelImage'));
      // No cost set for this machine: it counts as $0/h and serves the plain deploy.
      assert.deepEqual(
        { ...result.deploymentDecision, at: undefined },
        {
          plan: DEFAULT_PLAN,
          option: LOCAL,
          target: 'local',
          source: 'one-click',
          monthlyCostUsd: 0,
          p95Ms: result.deploymentDecision!.p95Ms,
          at: undefined,
        },
      );
      assert.equal(result.deploymentOptions![DEFAULT_PLAN].chosen, LOCAL);
      assert.equal(inputsOf(calls, 'deployToLocalTarget')[0].target, undefined, 'the local gateway');
      assert.deepEqual(inputsOf(calls, 'recordDeploymentDecision'), [
        { deploymentId: input.deploymentId, plan: DEFAULT_PLAN, option: LOCAL, target: 'local', source: 'one-click' },
      ]);
      assert.match(
        result.stages.find((s) => s.stage === 'deploy')!.detail!,
        new RegExp(`option ${LOCAL} \\(\\$0\\.00/month`),
      );
      const described = await handle.describe();
      assert.equal(described.typedSearchAttributes.get(ferryTargetKey), 'local');
    });
  });

  test('a named target limits the plan to its options and deploys there, namespace kept', LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      const input = deployInput({ target: { kind: 'kubernetes', namespace: 'ml' } });
      const handle = await start(queue, input);
      const result: DeploymentStatus = await handle.result();
      const table = result.deploymentOptions![DEFAULT_PLAN];
      assert.ok(table.options.every((o) => o.target === 'kubernetes'));
      assert.equal(result.deploymentDecision?.target, 'kubernetes');
      assert.match(result.deploymentDecision!.option, /^kubernetes:cluster:kubeconfig:/);
      assert.deepEqual(inputsOf(calls, 'deployToLocalTarget')[0].target, { kind: 'kubernetes', namespace: 'ml' });
      assert.equal((await handle.describe()).typedSearchAttributes.get(ferryTargetKey), 'kubernetes');
    });
  });

  test(
    'nothing within the budget fails the run at once, naming the cheapest option meeting the SLO',
    LIMIT,
    async () => {
      const calls: Call[] = [];
      await bed.withWorker(pipelineActivities(calls), async (queue) => {
        // More than this machine can serve, so only paid options meet the SLO, and $1/month buys none.
        const cost = { profile: parseProfile('5000rps'), constraints: { sloP95Ms: 50, budgetUsdPerMonth: 1 } };
        const handle = await start(queue, deployInput({ cost }));
        const err = await handle.result().then(
          () => assert.fail('the run went live'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof WorkflowFailedError);
        const status: DeploymentStatus = await handle.query(deploymentStatusQuery);
        assert.match(
          status.error!,
          /^deploy failed: no option fits the budget of \$1\/month: the cheapest that meets the p95 SLO of 50 ms is \S+ at \$[\d.]+\/month$/,
        );
        assert.equal(inputsOf(calls, 'buildAndPushModelImage').length, 0, 'no image was built');
        assert.equal(status.stages.find((s) => s.stage === 'deploy')?.state, 'failed');
      });
    },
  );
});

describe('review mode', () => {
  test('the validator checks plan and option; the approved option is deployed', LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      const handle = await start(queue, deployInput({ mode: 'review' }));
      const waiting = await reachPhase(handle, 'awaiting-approval');
      const table = waiting.deploymentOptions!.original;
      assert.equal(table.chosen, LOCAL, 'the table is there while waiting');

      assert.match(
        await refusal(handle, 'original', 'vm-on-demand:aws:mars-1:x9.huge'),
        /^unknown deployment option "vm-on-demand:aws:mars-1:x9\.huge" for plan "original"; choose one of: local:local:this-machine/,
      );
      const notConfigured = table.options.find((o) => o.feasible && !o.deployable)!;
      assert.match(
        await refusal(handle, 'original', notConfigured.id),
        new RegExp(
          `^deployment option "${notConfigured.id.replace(/\./g, '\\.')}" cannot be deployed from here \\(not configured\\)`,
        ),
      );
      // The plan is still checked first.
      assert.match(await refusal(handle, 'nope', LOCAL), /^unknown plan "nope"/);
      assert.equal((await handle.query(deploymentStatusQuery)).chosenPlan, undefined, 'nothing refused was taken');

      const cluster = table.options.find((o) => o.feasible && o.deployable && o.target === 'kubernetes')!;
      const chosen = await handle.executeUpdate(approvePlanUpdate, {
        args: [{ plan: 'original', option: cluster.id, approvedBy: 'ana' }],
      });
      assert.deepEqual([chosen.plan, chosen.option, chosen.approvedBy], ['original', cluster.id, 'ana']);
      const result: DeploymentStatus = await handle.result();
      assert.deepEqual(
        [
          result.deploymentDecision?.plan,
          result.deploymentDecision?.option,
          result.deploymentDecision?.source,
          result.deploymentDecision?.approvedBy,
        ],
        ['original', cluster.id, 'approved', 'ana'],
      );
      assert.equal(inputsOf(calls, 'deployToLocalTarget')[0].target?.kind, 'kubernetes');
      assert.equal(inputsOf(calls, 'recordDeploymentDecision')[0].option, cluster.id);
    });
  });

  test("an approval without an option takes the plan's choice; a plan nothing fits is refused", LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      // 5000 rps: this machine cannot serve it; within $1/month nothing can.
      const cost = { profile: parseProfile('5000rps'), constraints: { sloP95Ms: 50, budgetUsdPerMonth: 1 } };
      const handle = await start(queue, deployInput({ mode: 'review', cost }));
      await reachPhase(handle, 'awaiting-approval');
      assert.match(
        await refusal(handle, 'original'),
        /^plan "original" cannot be deployed: no option fits the budget of \$1\/month: the cheapest that meets the p95 SLO of 50 ms is /,
      );
    });
    const calls2: Call[] = [];
    await bed.withWorker(pipelineActivities(calls2), async (queue) => {
      const handle = await start(queue, deployInput({ mode: 'review' }));
      await reachPhase(handle, 'awaiting-approval');
      const chosen = await handle.executeUpdate(approvePlanUpdate, { args: [{ plan: 'original', approvedBy: 'bo' }] });
      assert.equal(chosen.option, undefined);
      const result: DeploymentStatus = await handle.result();
      assert.equal(result.deploymentDecision?.option, result.deploymentOptions!.original.chosen);
      assert.equal(result.deploymentDecision?.source, 'approved');
    });
  });
});
