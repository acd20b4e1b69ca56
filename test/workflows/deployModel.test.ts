/**
 * DeployModelWorkflow's decisions on the time-skipping test server, activities replaced: the approval
 * deadline and the default plan taken after it, the approval Update's validator, the canary branch, and
 * how activity failures map to retries and to the run's error.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  approvePlanSignal,
  approvePlanUpdate,
  deploymentStatusQuery,
  monitorStatusQuery,
} from '../../workflows/messages';
import type { DeployModelInput, DeploymentPhase, DeploymentStatus, MonitorStatus } from '../../workflows/types';
import { workflowIds } from '../../workflows/types';
import { type Call, DEFAULT_PLAN, inputsOf, pipelineActivities, SMOKE_TEST } from './pipelineActivities';
import { startWorkflowTestBed, type WorkflowTestBed } from './timeSkipping';

const MINUTE = 60_000;
// A run that never ends fails its test instead of hanging the tier.
const LIMIT = { timeout: 60_000 };

let bed: WorkflowTestBed;
/** The runs a test started (ended after it, with their monitors). */
const started: DeployModelInput[] = [];

/** One test server for the tests of this suite. */
function sharedServer(): void {
  before(async () => {
    bed = await startWorkflowTestBed();
  });
  after(async () => {
    await bed?.teardown();
  });
  // A live run's monitor outlives it, and a failed test may leave its run going: once the test's worker
  // is gone, their next activity would wait for a worker forever, and the test server does not skip time
  // while an activity is pending. So every run a test started ends with it.
  afterEach(async () => {
    for (const input of started.splice(0)) {
      for (const id of [
        workflowIds.deploy(input.model, input.version),
        workflowIds.monitor(input.model, input.version),
      ]) {
        await bed.env.client.workflow
          .getHandle(id)
          .terminate('test done')
          .catch(() => undefined); // ended already, or never started (no monitor for a canary or a failed run)
      }
    }
  });
}

/**
 * A test server per test. After a workflow Update (accepted or refused), the test server (1.38) no longer
 * skips time for as long as it runs, so a test after it would wait deadlines and backoffs in real time.
 */
function serverPerTest(): void {
  let next: Promise<WorkflowTestBed> | undefined;
  beforeEach(async () => {
    bed = await (next ?? startWorkflowTestBed());
    // The next test's server comes up while this test runs (a start takes about 1.5 s of Java).
    next = startWorkflowTestBed();
    next.catch(() => undefined); // its failure surfaces where the next test awaits it
  });
  afterEach(async () => {
    started.length = 0;
    await bed?.teardown();
  });
  after(async () => {
    await (await next?.catch(() => undefined))?.teardown();
  });
}

let runs = 0;
function deployInput(overrides: Partial<DeployModelInput> = {}): DeployModelInput {
  const version = `v${++runs}`;
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

/** Polls the status Query (time does not move meanwhile: only waiting on a result skips it). */
async function reachPhase(handle: WorkflowHandle, phase: DeploymentPhase): Promise<DeploymentStatus> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await handle.query(deploymentStatusQuery);
    if (status.phase === phase) return status;
    assert.ok(Date.now() < deadline, `the run never reached ${phase} (it is at ${status.phase})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function updateRefusal(handle: WorkflowHandle, plan: string): Promise<string> {
  const err = await handle.executeUpdate(approvePlanUpdate, { args: [{ plan, approvedBy: 'test' }] }).then(
    () => assert.fail(`approving "${plan}" was accepted`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowUpdateFailedError, `refused as a failed Update, got ${String(err)}`);
  return (err.cause as Error).message;
}

describe('approval (review mode)', () => {
  serverPerTest();

  test('without an approval the run waits the whole deadline, then takes the default plan', LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      const begin = await bed.env.currentTimeMs();
      const handle = await start(queue, deployInput({ mode: 'review', approvalTimeoutMs: 30 * MINUTE }));
      const waiting = await reachPhase(handle, 'awaiting-approval');
      assert.equal(waiting.chosenPlan, undefined);
      assert.equal(waiting.defaultPlan, DEFAULT_PLAN);
      assert.ok(waiting.approvalDeadline, 'the deadline is shown while waiting');
      assert.equal(inputsOf(calls, 'recordOptimizationChoice').length, 0, 'no plan is recorded before a choice');

      const result: DeploymentStatus = await handle.result();
      const elapsed = (await bed.env.currentTimeMs()) - begin;
      assert.ok(elapsed >= 30 * MINUTE, `the run waited the deadline out (${elapsed} ms of workflow time)`);
      assert.ok(Date.parse(waiting.approvalDeadline!) - begin >= 30 * MINUTE - 1000);
      assert.equal(result.phase, 'live');
      assert.equal(result.chosenPlan?.plan, DEFAULT_PLAN);
      assert.equal(result.chosenPlan?.source, 'default-after-timeout');
      assert.deepEqual(
        inputsOf(calls, 'recordOptimizationChoice').map((i) => [i.plan, i.source]),
        [[DEFAULT_PLAN, 'default-after-timeout']],
      );
      assert.equal(inputsOf(calls, 'buildAndPushModelImage')[0].plan, DEFAULT_PLAN, 'the image is built of that plan');
    });
  });

  test('an approval before the deadline is taken at once, and the run goes on without waiting', LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      const begin = await bed.env.currentTimeMs();
      const handle = await start(queue, deployInput({ mode: 'review', approvalTimeoutMs: 30 * MINUTE }));
      await reachPhase(handle, 'awaiting-approval');
      const chosen = await handle.executeUpdate(approvePlanUpdate, { args: [{ plan: 'original', approvedBy: 'ana' }] });
      assert.deepEqual([chosen.plan, chosen.source, chosen.approvedBy], ['original', 'approved', 'ana']);

      const result: DeploymentStatus = await handle.result();
      assert.equal(result.phase, 'live');
      assert.deepEqual(result.chosenPlan, chosen);
      assert.deepEqual(
        inputsOf(calls, 'recordOptimizationChoice').map((i) => [i.plan, i.source, i.approvedBy]),
        [['original', 'approved', 'ana']],
      );
      const elapsed = (await bed.env.currentTimeMs()) - begin;
      assert.ok(elapsed < 30 * MINUTE, `the run did not wait for the deadline (${elapsed} ms of workflow time)`);
    });
  });

  test(
    'the validator refuses unknown, inapplicable and out-of-budget plans; the run keeps waiting',
    LIMIT,
    async () => {
      const calls: Call[] = [];
      await bed.withWorker(pipelineActivities(calls), async (queue) => {
        const handle = await start(queue, deployInput({ mode: 'review' }));
        await reachPhase(handle, 'awaiting-approval');

        assert.equal(await updateRefusal(handle, 'nope'), 'unknown plan "nope"; choose one of: original, int8-dynamic');
        assert.match(await updateRefusal(handle, 'prune'), /^plan "prune" cannot be chosen: not applicable: no Conv/);
        assert.equal(
          await updateRefusal(handle, 'fp16-weights'),
          'plan "fp16-weights" is cosine 0.95 < 0.99; choose one of: original, int8-dynamic',
        );
        // An invalid approval by Signal (chat tools) is ignored the same way, not taken.
        await handle.signal(approvePlanSignal, { plan: 'nope', approvedBy: 'chat' });
        const still = await handle.query(deploymentStatusQuery);
        assert.equal(still.phase, 'awaiting-approval');
        assert.equal(still.chosenPlan, undefined, 'no refused plan was taken');

        await handle.signal(approvePlanSignal, { plan: DEFAULT_PLAN, approvedBy: 'chat' });
        const result: DeploymentStatus = await handle.result();
        assert.deepEqual([result.chosenPlan?.plan, result.chosenPlan?.approvedBy], [DEFAULT_PLAN, 'chat']);

        // Refused Updates are rejected before they reach history: only the run's own events are there.
        const history = await handle.fetchHistory();
        const updates = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
        assert.equal(updates.length, 0, 'no refused Update was written to the history');
      });
    },
  );

  test('an approval after the deadline, or for a one-click run, is refused with the reason', LIMIT, async () => {
    const refusals: string[] = [];
    // The approval is sent from inside the container stage, i.e. while the run is past waiting.
    const lateApproval = async (handleOf: () => WorkflowHandle) => {
      refusals.push(await updateRefusal(handleOf(), 'original'));
    };
    for (const mode of ['review', 'one-click'] as const) {
      const calls: Call[] = [];
      const input = deployInput({ mode });
      const handleOf = () => bed.env.client.workflow.getHandle(Context.current().info.workflowExecution!.workflowId);
      const acts = pipelineActivities(calls, {
        buildAndPushModelImage: async () => {
          await lateApproval(handleOf);
          return {
            imageId: 3,
            image: { registry: 'r', repository: 'ferry/mlp', tag: 'v', digest: 'sha256:00', sizeBytes: 1 },
            pushedBytes: 1,
            smokeTest: SMOKE_TEST,
          };
        },
      });
      await bed.withWorker(acts, async (queue) => {
        const result: DeploymentStatus = await (await start(queue, input)).result();
        assert.equal(result.phase, 'live');
        assert.equal(result.chosenPlan?.source, mode === 'review' ? 'default-after-timeout' : 'one-click');
      });
    }
    assert.deepEqual(refusals, [
      `deployment mlp-v${runs - 1} is not waiting for an approval (it is at: container)`,
      `deployment mlp-v${runs} was started in one-click mode and takes no approval`,
    ]);
  });
});

describe('deploy branches', () => {
  sharedServer();

  test('a usual deployment starts its own monitor, which outlives the run', LIMIT, async () => {
    const calls: Call[] = [];
    await bed.withWorker(pipelineActivities(calls), async (queue) => {
      const input = deployInput();
      const result: DeploymentStatus = await (await start(queue, input)).result();
      assert.equal(result.phase, 'live');
      assert.equal(result.percent, 100);
      assert.equal(result.canary, undefined);
      const monitorId = workflowIds.monitor(input.model, input.version);
      assert.equal(result.monitorWorkflowId, monitorId);
      assert.equal(inputsOf(calls, 'deployToLocalTarget')[0].canary, undefined);
      const monitor = bed.env.client.workflow.getHandle(monitorId);
      assert.equal((await monitor.describe()).status.name, 'RUNNING', 'the monitor runs on after the pipeline ended');
      const watched: MonitorStatus = await monitor.query(monitorStatusQuery);
      assert.equal(watched.deploymentId, input.deploymentId);
    });
  });

  test(
    'a canary becomes a revision of the live deployment, watched by its monitor (no monitor of its own)',
    LIMIT,
    async () => {
      const calls: Call[] = [];
      const acts = pipelineActivities(calls, {
        deployToLocalTarget: async (input) => ({
          endpoint: 'http://127.0.0.1:8080/d/mlp-live',
          inferUrl: 'http://127.0.0.1:8080/d/mlp-live/v2/models/mlp/infer',
          replicas: 1,
          canary: {
            baseDeploymentId: input.canary!.of,
            revision: input.canary!.version,
            percent: input.canary!.percent,
            split: { default: 100 - input.canary!.percent, [input.canary!.version]: input.canary!.percent },
            baseMonitorWorkflowId: 'monitor:mlp:live',
          },
        }),
      });
      await bed.withWorker(acts, async (queue) => {
        const input = deployInput({ canary: { of: 'mlp-live', percent: 10 } });
        const result: DeploymentStatus = await (await start(queue, input)).result();
        assert.deepEqual(inputsOf(calls, 'deployToLocalTarget')[0].canary, {
          of: 'mlp-live',
          percent: 10,
          version: input.version,
        });
        assert.equal(result.phase, 'live');
        assert.equal(result.canary?.baseDeploymentId, 'mlp-live');
        assert.equal(result.canary?.percent, 10);
        assert.equal(result.monitorWorkflowId, 'monitor:mlp:live', "the base deployment's monitor watches it");
        assert.equal(result.endpoint, 'http://127.0.0.1:8080/d/mlp-live');
        assert.match(result.stages.find((s) => s.stage === 'deploy')!.detail!, /^revision v\d+ of mlp-live with 10%/);
        const ownMonitor = bed.env.client.workflow.getHandle(workflowIds.monitor(input.model, input.version));
        await assert.rejects(ownMonitor.describe(), /not found/i, 'no monitor was started for the canary');
        assert.equal(inputsOf(calls, 'collectDeploymentMetrics').length, 0);
      });
    },
  );
});

describe('failures', () => {
  // Its own server per test: after several failed runs on one server, the test server (1.38) stopped
  // skipping the next run's retry backoff (8 attempts then take 90 s of real time).
  serverPerTest();

  async function failedRun(acts: ReturnType<typeof pipelineActivities>): Promise<ApplicationFailure> {
    return bed.withWorker(acts, async (queue) => {
      const err = await (await start(queue, deployInput())).result().then(
        () => assert.fail('the run succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError, String(err));
      assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
      return err.cause;
    });
  }

  // The failures below are typed but not flagged non-retryable, so the workflow's retry policy alone decides.
  test('bad input (InvalidModel) is tried once and fails the run with the stage and the reason', LIMIT, async () => {
    const calls: Call[] = [];
    const failure = await failedRun(
      pipelineActivities(calls, {
        ingestModel: async () => {
          throw ApplicationFailure.create({ type: 'InvalidModel', message: 'not an ONNX model: bad protobuf' });
        },
      }),
    );
    assert.equal(failure.type, 'DeploymentFailed');
    assert.equal(failure.nonRetryable, true);
    assert.equal(failure.message, 'upload failed: not an ONNX model: bad protobuf');
    assert.equal(inputsOf(calls, 'ingestModel').length, 1, 'not retried');
    assert.equal(inputsOf(calls, 'measureOptimizationCandidates').length, 0, 'nothing after the failed stage ran');
  });

  test('an optimization that is not possible fails the optimize stage at once', LIMIT, async () => {
    const calls: Call[] = [];
    const failure = await failedRun(
      pipelineActivities(calls, {
        measureOptimizationCandidates: async () => {
          throw ApplicationFailure.create({ type: 'OptimizationNotPossible', message: 'no candidate ran' });
        },
      }),
    );
    assert.equal(failure.message, 'optimize failed: no candidate ran');
    assert.equal(inputsOf(calls, 'measureOptimizationCandidates').length, 1, 'not retried');
  });

  test('an image that fails its smoke test fails the container stage at once, with its log tail', LIMIT, async () => {
    const calls: Call[] = [];
    const logTail = 'Error: model "mlp": cannot read /models/mlp/model.onnx: ENOENT';
    const failure = await failedRun(
      pipelineActivities(calls, {
        buildAndPushModelImage: async () => {
          throw ApplicationFailure.create({
            type: 'SmokeTestFailed',
            message: `the image's server under youki did not become ready: the server exited with code 1\n${logTail}`,
          });
        },
      }),
    );
    assert.equal(failure.type, 'DeploymentFailed');
    assert.match(failure.message, /^container failed: the image's server under youki did not become ready/);
    assert.ok(failure.message.endsWith(logTail), failure.message);
    assert.equal(inputsOf(calls, 'buildAndPushModelImage').length, 1, 'not retried');
    assert.equal(inputsOf(calls, 'deployToLocalTarget').length, 0, 'a failed image is not deployed');
  });

  test('a container runtime that is not installed fails the container stage at once', LIMIT, async () => {
    const calls: Call[] = [];
    const failure = await failedRun(
      pipelineActivities(calls, {
        buildAndPushModelImage: async () => {
          throw ApplicationFailure.create({
            type: 'ContainerRuntimeUnavailable',
            message: 'youki is not installed: run `bash infra/install-container-runtime.sh`',
          });
        },
      }),
    );
    assert.match(failure.message, /^container failed: youki is not installed: .*install-container-runtime\.sh/);
    assert.equal(inputsOf(calls, 'buildAndPushModelImage').length, 1, 'not retried');
  });

  test('a transient failure is retried with backoff and the run succeeds', LIMIT, async () => {
    const calls: Call[] = [];
    let attempts = 0;
    const acts = pipelineActivities(calls, {
      buildAndPushModelImage: async () => {
        attempts++;
        if (Context.current().info.attempt < 3) throw new Error('registry: connection reset');
        return {
          imageId: 3,
          image: { registry: 'r', repository: 'ferry/mlp', tag: 'v', digest: 'sha256:00', sizeBytes: 1 },
          pushedBytes: 1,
          smokeTest: SMOKE_TEST,
        };
      },
    });
    await bed.withWorker(acts, async (queue) => {
      const begin = await bed.env.currentTimeMs();
      const result: DeploymentStatus = await (await start(queue, deployInput())).result();
      assert.equal(result.phase, 'live');
      assert.equal(attempts, 3);
      // Backoff 1 s then 2 s (initialInterval 1s, coefficient 2), skipped in workflow time.
      assert.ok((await bed.env.currentTimeMs()) - begin >= 3000, 'the retries waited their backoff');
    });
  });

  test('a failure that keeps happening is retried 8 times, then fails the run', LIMIT, async () => {
    const calls: Call[] = [];
    const failure = await failedRun(
      pipelineActivities(calls, {
        deployToLocalTarget: async () => {
          throw new Error('gateway at 127.0.0.1:8080 refused the connection');
        },
      }),
    );
    assert.equal(failure.message, 'deploy failed: gateway at 127.0.0.1:8080 refused the connection');
    assert.equal(inputsOf(calls, 'deployToLocalTarget').length, 8, 'maximumAttempts');
  });
});
