/**
 * MonitorDeploymentWorkflow's decisions on the time-skipping test server, activities replaced: it collects
 * on its interval, hibernates an idle running deployment once, destroys it on `undeploy` and ends, and
 * continues as new (carrying its counts) before its history grows long.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { Context } from '@temporalio/activity';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { monitorStatusQuery, undeploySignal } from '../../workflows/messages';
import {
  type MetricsSnapshot,
  type MonitorInput,
  type MonitorStatus,
  type ServingState,
  workflowIds,
} from '../../workflows/types';
import { type Call, inputsOf, pipelineActivities } from './pipelineActivities';
import { type Activities, startWorkflowTestBed, type WorkflowTestBed } from './timeSkipping';

const MINUTE = 60_000;
// A run that never ends fails its test instead of hanging the tier.
const LIMIT = { timeout: 60_000 };
const INTERVAL = MINUTE;
const IDLE_HIBERNATE = 15 * MINUTE;

let bed: WorkflowTestBed;
before(async () => {
  bed = await startWorkflowTestBed();
});
after(async () => {
  await bed?.teardown();
});
// A run a failed test left going would keep an activity pending without a worker, and the test server
// does not skip time while one is: every run a test started ends with it.
const started: string[] = [];
afterEach(async () => {
  for (const id of started.splice(0)) {
    await bed.env.client.workflow
      .getHandle(id)
      .terminate('test done')
      .catch(() => undefined); // ended already
  }
});

let runs = 0;
function monitorInput(): MonitorInput {
  const version = `v${++runs}`;
  return {
    deploymentId: `mlp-${version}`,
    model: 'mlp',
    version,
    settings: { intervalMs: INTERVAL, idleHibernateMs: IDLE_HIBERNATE },
  };
}

function sample(servingState: ServingState, idleMs: number): MetricsSnapshot {
  return {
    at: new Date().toISOString(),
    servingState,
    replicas: servingState === 'running' ? 1 : 0,
    requestCount: 10,
    requestsDelta: 0,
    errorCount: 0,
    latencyP50Ms: null,
    latencyP95Ms: null,
    idleMs,
    latencyBuckets: [],
  };
}

/** Metrics the test scripts per collection (1-based); after `undeployAfter` of them the user undeploys. */
function scriptedMonitor(
  calls: Call[],
  samples: (n: number) => MetricsSnapshot,
  undeployAfter: number,
): Partial<Activities> {
  let n = 0;
  return pipelineActivities(calls, {
    collectDeploymentMetrics: async () => {
      n++;
      if (n === undeployAfter) {
        const { workflowId } = Context.current().info.workflowExecution!;
        await bed.env.client.workflow.getHandle(workflowId).signal(undeploySignal, { requestedBy: 'test' });
      }
      return samples(n);
    },
  });
}

function start(taskQueue: string, input: MonitorInput): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const workflowId = workflowIds.monitor(input.model, input.version);
  started.push(workflowId);
  return bed.env.client.workflow.start('monitorDeploymentWorkflow', {
    taskQueue,
    workflowId,
    args: [input],
  });
}

test(
  'collects every interval and hibernates a running deployment once it has been idle long enough',
  LIMIT,
  async () => {
    const calls: Call[] = [];
    const samples = (n: number) =>
      n === 1
        ? sample('running', 5 * MINUTE)
        : n === 2
          ? sample('running', 20 * MINUTE)
          : sample('hibernated', 30 * MINUTE);
    await bed.withWorker(scriptedMonitor(calls, samples, 4), async (queue) => {
      const input = monitorInput();
      const begin = await bed.env.currentTimeMs();
      const result: MonitorStatus = await (await start(queue, input)).result();
      assert.ok((await bed.env.currentTimeMs()) - begin >= 4 * INTERVAL, 'one collection per interval');
      assert.deepEqual(
        inputsOf(calls, 'hibernateDeployment'),
        [{ deploymentId: input.deploymentId, idleMs: 20 * MINUTE }],
        'hibernated once: not while busy (5 min idle), not again once hibernated',
      );
      assert.equal(result.hibernations, 1);
      assert.equal(result.collections, 4);
      assert.equal(result.servingState, 'undeployed');
      const order = calls.map((c) => c.activity);
      assert.deepEqual(order.slice(0, 5), [
        'collectDeploymentMetrics',
        'accountInterval',
        'collectDeploymentMetrics',
        'accountInterval',
        'hibernateDeployment',
      ]);
      // Each interval is priced from the sample before it; the one after the hibernation knows when it was.
      const accounts = inputsOf(calls, 'accountInterval');
      assert.equal(accounts[0].previous, undefined);
      assert.equal(accounts[1].previous?.idleMs, 5 * MINUTE);
      assert.equal(accounts[1].stoppedAt, undefined);
      assert.ok(accounts[2].stoppedAt, 'the interval after the hibernation is told when it happened');
    });
  },
);

test('undeploy destroys the deployment and ends the run, with no collection after it', LIMIT, async () => {
  const calls: Call[] = [];
  await bed.withWorker(pipelineActivities(calls), async (queue) => {
    const input = monitorInput();
    const handle = await start(queue, input);
    const running: MonitorStatus = await handle.query(monitorStatusQuery);
    assert.deepEqual([running.servingState, running.undeployRequested], ['running', false]);
    await handle.signal(undeploySignal, { requestedBy: 'test' });
    const result: MonitorStatus = await handle.result();
    assert.equal(result.servingState, 'undeployed');
    assert.equal(result.undeployRequested, true);
    assert.deepEqual(
      calls.map((c) => c.activity),
      ['destroyDeployment'],
    );
    assert.deepEqual(inputsOf(calls, 'destroyDeployment'), [{ deploymentId: input.deploymentId }]);
  });
});

test('continues as new after its collections per run, carrying its counts into the next run', {
  timeout: 120_000,
}, async () => {
  const calls: Call[] = [];
  const samples = (n: number) => sample('running', n === 10 ? IDLE_HIBERNATE : 0);
  // 20 per run rather than the default 200: the same path, a tenth of the activities.
  await bed.withWorker(scriptedMonitor(calls, samples, 22), async (queue) => {
    const base = monitorInput();
    const input = { ...base, settings: { ...base.settings, collectionsPerRun: 20 } };
    const handle = await start(queue, input);
    const result: MonitorStatus = await handle.result();
    assert.equal(result.collections, 22, 'counted across both runs');
    assert.equal(result.hibernations, 1, 'carried from the first run');

    const first = bed.env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    assert.equal((await first.describe()).status.name, 'CONTINUED_AS_NEW');
    const latest = bed.env.client.workflow.getHandle(handle.workflowId);
    assert.notEqual((await latest.describe()).runId, handle.firstExecutionRunId);
    const started = (await latest.fetchHistory()).events![0].workflowExecutionStartedEventAttributes!;
    const nextInput = defaultPayloadConverter.fromPayload<MonitorInput>(started.input!.payloads![0]);
    const { lastSample, ...counts } = nextInput.carried ?? { collections: 0, hibernations: 0 };
    assert.deepEqual(
      { ...nextInput, carried: counts },
      { ...input, carried: { collections: 20, hibernations: 1, alerts: {} } },
    );
    assert.equal(
      lastSample?.servingState,
      'running',
      'the last sample is carried: the next interval is priced from it',
    );
  });
});

test(
  'a deployment gone from its target is marked missing and the monitor ends, without destroying or redeploying',
  LIMIT,
  async () => {
    const calls: Call[] = [];
    const samples = (n: number) => (n < 3 ? sample('running', MINUTE) : sample('missing', 0));
    // Never undeployed: the run must end on its own.
    await bed.withWorker(scriptedMonitor(calls, samples, Number.POSITIVE_INFINITY), async (queue) => {
      const input = monitorInput();
      const handle = await start(queue, input);
      const result: MonitorStatus = await handle.result();
      assert.equal(result.servingState, 'missing');
      assert.equal(result.collections, 3);
      assert.equal(result.undeployRequested, false);
      assert.match(result.missing!.note, new RegExp(`${input.deploymentId} was removed from its target outside Ferry`));
      assert.match(result.missing!.note, /ferry deploy <model.onnx> --name mlp --version <new version>/);
      assert.deepEqual(
        calls.map((c) => c.activity),
        [
          'collectDeploymentMetrics',
          'accountInterval',
          'collectDeploymentMetrics',
          'accountInterval',
          'collectDeploymentMetrics',
        ],
        'no destroy, no hibernate, no apply (and nothing priced once missing)',
      );
      // The ended run still answers its status query.
      assert.equal(((await handle.query(monitorStatusQuery)) as MonitorStatus).servingState, 'missing');
    });
  },
);

test('a deployment that disappears while being hibernated is marked missing too', LIMIT, async () => {
  const calls: Call[] = [];
  await bed.withWorker(
    {
      ...scriptedMonitor(calls, () => sample('running', IDLE_HIBERNATE), Number.POSITIVE_INFINITY),
      hibernateDeployment: async (input: { deploymentId: string; idleMs: number }) => {
        calls.push({ activity: 'hibernateDeployment', input });
        return 'missing' as const;
      },
    },
    async (queue) => {
      const result: MonitorStatus = await (await start(queue, monitorInput())).result();
      assert.equal(result.servingState, 'missing');
      assert.equal(result.hibernations, 0);
      assert.deepEqual(
        calls.map((c) => c.activity),
        ['collectDeploymentMetrics', 'accountInterval', 'hibernateDeployment'],
      );
    },
  );
});

test(
  'predictive on: a floor in force holds off hibernation; forecast-only and a failed forecast do not',
  LIMIT,
  async () => {
    // Idle long enough to hibernate at the first collection; hibernated after that.
    const idle = (n: number) => (n === 1 ? sample('running', 2 * IDLE_HIBERNATE) : sample('hibernated', 0));
    const cases = [
      { mode: 'on' as const, floor: 2, fails: false, hibernations: 0 },
      { mode: 'forecast-only' as const, floor: 2, fails: false, hibernations: 1 },
      { mode: 'on' as const, floor: 2, fails: true, hibernations: 1 },
    ];
    for (const c of cases) {
      const calls: Call[] = [];
      const acts = scriptedMonitor(calls, idle, 3);
      const recorded = acts.applyPredictiveFloor!;
      acts.applyPredictiveFloor = async (input) => {
        await recorded(input); // counted in `calls`
        if (c.fails) throw ApplicationFailure.nonRetryable('no history table', 'PredictiveError');
        return {
          at: new Date().toISOString(),
          mode: input.mode,
          floor: c.floor,
          applied: input.mode === 'on',
          woke: false,
          forecastPeakPerMinute: 40,
          expectedRequests: 80,
          leadMinutes: 2,
          reason: 'forecast peak 40/min within 2 min needs 2 replica(s)',
        };
      };
      await bed.withWorker(acts, async (queue) => {
        const base = monitorInput();
        const input = { ...base, settings: { ...base.settings, predictive: c.mode } };
        const handle = await start(queue, input);
        const result: MonitorStatus = await handle.result();
        const what = `${c.mode}${c.fails ? ', failing' : ''}`;
        assert.equal(result.hibernations, c.hibernations, `${what}: hibernations`);
        assert.equal(inputsOf(calls, 'applyPredictiveFloor').length, 3, `${what}: one decision per collection`);
        assert.deepEqual(inputsOf(calls, 'applyPredictiveFloor')[0], {
          deploymentId: input.deploymentId,
          mode: c.mode,
          intervalMs: INTERVAL,
        });
        if (c.fails) assert.match(result.predictive!.reason, /^no forecast this interval: no history table/);
        else assert.equal(result.predictive!.floor, 2);
      });
    }
    // Off (the default): no decision at all.
    const calls: Call[] = [];
    await bed.withWorker(scriptedMonitor(calls, idle, 2), async (queue) => {
      await (await start(queue, monitorInput())).result();
    });
    assert.equal(inputsOf(calls, 'applyPredictiveFloor').length, 0);
  },
);
