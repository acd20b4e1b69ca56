/**
 * DeployModelWorkflow: upload → optimize (approval) → container → deploy → monitor.
 * Only decisions, timers and messages live here; every stage's I/O is an activity.
 */

import type { RetryPolicy } from '@temporalio/common';
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { noOptionProblem, optionRefusal, optionToDeploy } from '../lib/cost/deployChoice';
import { approvePlanSignal, approvePlanUpdate, deploymentStatusQuery } from './messages';
import { monitorDeploymentWorkflow } from './monitorDeployment';
import { ferryStageKey, ferryTargetKey } from './searchAttributes';
import {
  type ApprovalRequest,
  type ChosenPlan,
  type ConsideredOptions,
  type DeployModelInput,
  type DeploymentDecision,
  type DeploymentPhase,
  type DeploymentStatus,
  type DeploymentTargetChoice,
  PIPELINE_STAGES,
  type PipelineStage,
  workflowIds,
} from './types';

const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8 };

// Short activities without heartbeats: a lost worker is noticed when the attempt times out, so keep it short.
const quick = proxyActivities<typeof activities>({
  startToCloseTimeout: '15s',
  retry,
});

// Activities that move or transform model files heartbeat; a worker that dies is noticed within the
// heartbeat timeout. Bad input (InvalidModel, ModelVersionConflict), an image that fails its smoke test and
// a container runtime that is not installed are never retried: another attempt would meet the same.
// The cost engine over every plan that could be approved: pure computation and one Postgres write. A plan it
// cannot make (a bad constraint) would fail again.
const planning = proxyActivities<typeof activities>({
  startToCloseTimeout: '2 minutes',
  retry: { ...retry, nonRetryableErrorTypes: ['PlanError'] },
});

const heavy = proxyActivities<typeof activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '20s',
  retry: {
    ...retry,
    nonRetryableErrorTypes: [
      'InvalidModel',
      'ModelVersionConflict',
      'UnknownPlan',
      'OptimizationNotPossible',
      'SmokeTestFailed',
      'ContainerRuntimeUnavailable',
    ],
  },
});

export async function deployModelWorkflow(input: DeployModelInput): Promise<DeploymentStatus> {
  const status: DeploymentStatus = {
    deploymentId: input.deploymentId,
    model: input.model,
    version: input.version,
    mode: input.mode,
    phase: 'upload',
    stages: PIPELINE_STAGES.map((stage) => ({ stage, state: 'pending' })),
    percent: 0,
  };
  setHandler(deploymentStatusQuery, () => status);

  const validApprovalProblem = (req: ApprovalRequest): string | undefined => {
    if (status.phase !== 'awaiting-approval') {
      return input.mode === 'one-click'
        ? `deployment ${input.deploymentId} was started in one-click mode and takes no approval`
        : `deployment ${input.deploymentId} is not waiting for an approval (it is at: ${status.phase})`;
    }
    // Plans are the measured candidates; only those within the accuracy budget can be approved.
    const plans = status.plans ?? [];
    const approvable = plans.filter((p) => p.withinBudget !== false).map((p) => p.id);
    const plan = plans.find((p) => p.id === req.plan);
    if (!plan) {
      const other = status.optimization?.candidates.find((c) => c.id === req.plan);
      if (other && other.state !== 'measured') {
        return `plan "${req.plan}" cannot be chosen: ${other.state === 'not-applicable' ? 'not applicable' : 'failed'}: ${other.reason ?? ''}; choose one of: ${approvable.join(', ')}`;
      }
      return `unknown plan "${req.plan}"; choose one of: ${approvable.join(', ')}`;
    }
    if (plan.withinBudget === false) {
      return `plan "${req.plan}" is ${plan.rejection ?? 'outside the accuracy budget'}; choose one of: ${approvable.join(', ')}`;
    }
    // The deployment option: one of the plan's table that is feasible and deployable here; none named, the
    // plan's own choice, so a plan that cannot be deployed at all is refused too.
    if (!status.deploymentOptions) {
      return req.option === undefined
        ? undefined
        : `deployment ${input.deploymentId} was started before the deploy stage planned: it takes no deployment option`;
    }
    const table = status.deploymentOptions[req.plan];
    if (req.option !== undefined) return optionRefusal(table, req.plan, req.option);
    const problem = noOptionProblem(table, req.plan);
    return problem ? `plan "${req.plan}" cannot be deployed: ${problem}` : undefined;
  };
  const accept = (req: ApprovalRequest): ChosenPlan => {
    status.chosenPlan = {
      plan: req.plan,
      ...(req.option !== undefined ? { option: req.option } : {}),
      source: 'approved',
      approvedBy: req.approvedBy,
      at: nowIso(),
    };
    return status.chosenPlan;
  };
  setHandler(approvePlanUpdate, accept, {
    validator: (req) => {
      const problem = validApprovalProblem(req);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(approvePlanSignal, (req) => {
    const problem = validApprovalProblem(req);
    if (problem) log.warn('approval signal ignored', { problem });
    else accept(req);
  });

  const enter = (stage: PipelineStage, phase: DeploymentPhase = stage) => {
    status.phase = phase;
    const rec = status.stages.find((s) => s.stage === stage)!;
    if (rec.state !== 'running') Object.assign(rec, { state: 'running', startedAt: nowIso() });
    upsertSearchAttributes([{ key: ferryStageKey, value: phase }]);
  };
  const finish = (stage: PipelineStage, detail: string) => {
    const rec = status.stages.find((s) => s.stage === stage)!;
    Object.assign(rec, { state: 'done', finishedAt: nowIso(), detail });
    status.percent = Math.round(
      (100 * status.stages.filter((s) => s.state === 'done').length) / PIPELINE_STAGES.length,
    );
  };
  let current: PipelineStage = 'upload';

  try {
    // 1 upload
    current = 'upload';
    enter('upload');
    const ingested = await heavy.ingestModel({ model: input.model, version: input.version, upload: input.upload });
    status.summary = ingested.summary;
    finish(
      'upload',
      `${ingested.summary.parameterCount.toLocaleString()} parameters, sha256 ${ingested.sha256.slice(0, 12)}`,
    );

    // 2 optimize
    current = 'optimize';
    enter('optimize');
    const original = { objectKey: ingested.objectKey, sha256: ingested.sha256 };
    // Every candidate is built and measured against the original before anyone chooses: the plans ARE the table's rows.
    const measured = await heavy.measureOptimizationCandidates({
      modelVersionId: ingested.modelVersionId,
      original,
      summary: ingested.summary,
      settings: input.optimize,
    });
    status.optimization = measured.table;
    status.plans = measured.plans;
    status.defaultPlan = measured.defaultPlan;
    // The deploy stage plans before anything is chosen, so that the approval can name an option too. Runs
    // started before it replay without (their history has no marker); a canary joins its base deployment.
    const plansDeployment = !input.canary && patched('plan-before-deploy');
    if (plansDeployment) {
      const planned = await planning.planDeploymentOptions({
        deploymentId: input.deploymentId,
        modelVersionId: ingested.modelVersionId,
        candidates: measured.plans.flatMap((p) =>
          p.withinBudget !== false && p.row ? [{ id: p.id, row: p.row }] : [],
        ),
        inputs: ingested.summary.inputs,
        ...(input.cost ? { cost: input.cost } : {}),
        ...(input.target ? { target: input.target } : {}),
      });
      status.deploymentOptions = planned.tables;
      // One-click deploys the default plan: when nothing fits it, say so now, before an image is built.
      const problem =
        input.mode === 'one-click' && noOptionProblem(planned.tables[measured.defaultPlan], measured.defaultPlan);
      if (problem) {
        current = 'deploy';
        throw ApplicationFailure.nonRetryable(problem, 'NoDeploymentOption');
      }
    }
    if (input.mode === 'review') {
      enter('optimize', 'awaiting-approval');
      status.approvalDeadline = new Date(Date.now() + input.approvalTimeoutMs).toISOString();
      // Replay safety: no command of this run may land between an approval Update's acceptance and its
      // completion in history, or a replaying worker (after a restart) meets them in another order and fails
      // the run as nondeterministic. So the deadline timer is never cancelled (it fires ignored, or dies with
      // the run), and the run waits for the Update handler to finish before its next command.
      let deadlinePassed = false;
      void sleep(input.approvalTimeoutMs).then(() => (deadlinePassed = true));
      await condition(() => status.chosenPlan !== undefined || deadlinePassed);
      await condition(allHandlersFinished);
      if (status.chosenPlan === undefined)
        status.chosenPlan = { plan: measured.defaultPlan, source: 'default-after-timeout', at: nowIso() };
      enter('optimize');
    } else {
      status.chosenPlan = { plan: measured.defaultPlan, source: 'one-click', at: nowIso() };
    }
    const plan = status.chosenPlan!.plan;
    const choice = await quick.recordOptimizationChoice({
      modelVersionId: ingested.modelVersionId,
      table: measured.table,
      plan,
      source: status.chosenPlan!.source,
      approvedBy: status.chosenPlan!.approvedBy,
    });
    const optimized = choice.model;
    status.benchmark = choice.benchmark;
    finish(
      'optimize',
      `plan ${plan} (${status.chosenPlan!.source}) of ${measured.plans.length} measured, ${status.benchmark.speedup.toFixed(2)}x speed, ${status.benchmark.sizeRatio.toFixed(2)}x smaller`,
    );

    // 3 container
    current = 'container';
    enter('container');
    const image = await heavy.buildAndPushModelImage({
      modelVersionId: ingested.modelVersionId,
      model: input.model,
      version: input.version,
      plan,
      modelObject: optimized,
    });
    status.image = image.image;
    finish('container', `${image.image.repository}@${image.image.digest.slice(0, 19)}`);

    // 4 deploy
    current = 'deploy';
    enter('deploy');
    let target = input.target;
    if (status.deploymentOptions) {
      const decided = decideTarget(status.deploymentOptions, status.chosenPlan!, input.target);
      status.deploymentDecision = decided.decision;
      target = decided.target;
      upsertSearchAttributes([{ key: ferryTargetKey, value: decided.decision.target }]);
      await quick.recordDeploymentDecision({
        deploymentId: input.deploymentId,
        plan,
        option: decided.decision.option,
        target: decided.decision.target,
        source: decided.decision.source,
        ...(decided.decision.approvedBy ? { approvedBy: decided.decision.approvedBy } : {}),
      });
    }
    const deployInput = {
      deploymentId: input.deploymentId,
      modelVersionId: ingested.modelVersionId,
      imageId: image.imageId,
      image: image.image,
      model: input.model,
      replicas: input.replicas,
      monitor: input.monitor,
      // Who may reach it (the gateway's spec carries it); a canary joins its base deployment's.
      ...(input.access ? { access: input.access } : {}),
      ...(target ? { target } : {}),
    };
    if (input.canary) {
      // A canary release: a new revision of a live deployment, watched by that deployment's monitor.
      // (Runs started before canaries existed have no `canary` and take the branch below unchanged.)
      const deployed = await heavy.deployToLocalTarget({
        ...deployInput,
        canary: { ...input.canary, version: input.version },
      });
      const canary = deployed.canary!;
      status.endpoint = deployed.endpoint;
      status.inferUrl = deployed.inferUrl;
      status.canary = canary;
      const split = Object.entries(canary.split)
        .map(([r, p]) => `${r}=${p}%`)
        .join(', ');
      finish(
        'deploy',
        `revision ${canary.revision} of ${canary.baseDeploymentId} with ${canary.percent}% of its traffic (${split}); ${deployed.replicas} replica(s) at ${deployed.endpoint}`,
      );

      current = 'monitor';
      enter('monitor');
      status.monitorWorkflowId = canary.baseMonitorWorkflowId;
      finish(
        'monitor',
        `watched with every revision of ${canary.baseDeploymentId}${canary.baseMonitorWorkflowId ? ` by ${canary.baseMonitorWorkflowId}` : ''} (no monitor of its own)`,
      );

      status.phase = 'live';
      upsertSearchAttributes([{ key: ferryStageKey, value: 'live' }]);
      return status;
    }
    const deployed = await heavy.deployToLocalTarget(deployInput);
    status.endpoint = deployed.endpoint;
    status.inferUrl = deployed.inferUrl;
    const d = status.deploymentDecision;
    finish(
      'deploy',
      `${deployed.replicas} replica(s) at ${deployed.endpoint}${d ? `; option ${d.option} ($${d.monthlyCostUsd.toFixed(2)}/month, p95 ${d.p95Ms ?? '-'} ms)` : ''}`,
    );

    // 5 monitor: a child that outlives this run (abandoned on close) for the deployment's life
    current = 'monitor';
    enter('monitor');
    const monitorId = workflowIds.monitor(input.model, input.version);
    await startChild(monitorDeploymentWorkflow, {
      workflowId: monitorId,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [
        {
          deploymentId: input.deploymentId,
          model: input.model,
          version: input.version,
          settings: input.monitor,
          ...(target ? { target } : {}),
        },
      ],
      typedSearchAttributes: workflowInfo().typedSearchAttributes,
    });
    status.monitorWorkflowId = monitorId;
    finish(
      'monitor',
      `monitoring every ${Math.round(input.monitor.intervalMs / 1000)}s, hibernate after ${Math.round(input.monitor.idleHibernateMs / 1000)}s idle`,
    );

    status.phase = 'live';
    upsertSearchAttributes([{ key: ferryStageKey, value: 'live' }]);
    return status;
  } catch (err) {
    const rec = status.stages.find((s) => s.stage === current)!;
    const message = failureMessage(err);
    Object.assign(rec, { state: 'failed', finishedAt: nowIso(), detail: message });
    status.phase = 'failed';
    status.error = `${current} failed: ${message}`;
    upsertSearchAttributes([{ key: ferryStageKey, value: 'failed' }]);
    throw ApplicationFailure.nonRetryable(status.error, 'DeploymentFailed');
  }
}

/**
 * The option the run deploys (the approved one, else the table's choice: the cheapest deployable option
 * meeting the SLO and budget) and the target choice it means. The validator and the one-click check have
 * made sure there is one; a run whose default plan fits none after a timeout fails here.
 */
function decideTarget(
  tables: Record<string, ConsideredOptions>,
  chosen: ChosenPlan,
  requested: DeploymentTargetChoice | undefined,
): { decision: DeploymentDecision; target: DeploymentTargetChoice | undefined } {
  const table = tables[chosen.plan];
  const option = table && optionToDeploy(table, chosen.option);
  if (!option?.target || option.target === 'ec2') {
    throw ApplicationFailure.nonRetryable(
      option
        ? `option ${option.id} has no target the pipeline deploys to`
        : (noOptionProblem(table, chosen.plan) ?? 'no option'),
      'NoDeploymentOption',
    );
  }
  const decision: DeploymentDecision = {
    plan: chosen.plan,
    option: option.id,
    target: option.target,
    source: chosen.source,
    ...(chosen.approvedBy ? { approvedBy: chosen.approvedBy } : {}),
    monthlyCostUsd: option.monthlyCostUsd,
    p95Ms: option.p95Ms,
    at: nowIso(),
  };
  if (option.target === 'local') return { decision, target: undefined };
  return {
    decision,
    target: { kind: option.target, ...(requested?.namespace ? { namespace: requested.namespace } : {}) },
  };
}

function failureMessage(err: unknown): string {
  // Activity failures wrap the real error as `cause`; users want the innermost message.
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && (e as { cause?: unknown }).cause) e = (e as { cause?: unknown }).cause as typeof e;
  return e?.message ?? String(err);
}

function nowIso(): string {
  return new Date(Date.now()).toISOString();
}
