/**
 * Deployment runs in Temporal: the pipeline started, a run found by reference, its status and heartbeats,
 * approvals, the list of runs, and undeploy. Workflows are started and addressed by their functions
 * (workflows/index.ts) and messaged by their definitions (workflows/messages.ts), so a renamed workflow or
 * a changed message type is a type error here rather than a failure at run time.
 */
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { isValidName } from '../../lib/names';
import { deployModelWorkflow, type monitorDeploymentWorkflow } from '../../workflows';
import {
  approvePlanSignal,
  approvePlanUpdate,
  deploymentStatusQuery,
  monitorStatusQuery,
  undeploySignal,
} from '../../workflows/messages';
import {
  ferryDeploymentKey,
  ferryModelKey,
  ferryModelVersionKey,
  ferryStageKey,
} from '../../workflows/searchAttributes';
import {
  type ChosenPlan,
  type DeployModelInput,
  type DeploymentStatus,
  deploymentIdFor,
  type MonitorStatus,
  workflowIds,
} from '../../workflows/types';
import { FerryError, NotAwaitingApprovalError, UnknownDeploymentError } from './errors';
import type { ActivityProgress, DeploymentListEntry, ResolvedDeployment } from './types';

/** Run states after which the same model version may be deployed again. */
const ENDED_WITHOUT_SUCCESS = ['FAILED', 'TERMINATED', 'CANCELLED', 'TIMED_OUT'];
/** The visibility query of every deploy run (the workflow type is its function's name). */
const DEPLOY_RUNS = `WorkflowType = '${deployModelWorkflow.name}'`;

/** What became of an approval sent as a Signal: `chosen` is the plan the run took, if it took one. */
export interface SignalApproval {
  taken: boolean;
  chosen?: ChosenPlan;
}

export class DeploymentRuns {
  /** Deployments this client started or found by id, so they resolve before visibility indexes them. */
  private readonly known = new Map<string, ResolvedDeployment>();

  constructor(
    private readonly temporal: Client,
    private readonly taskQueue: string,
  ) {}

  /** Makes `deployment` resolvable by its id at once (visibility indexes a new run a little later). */
  remember(deployment: ResolvedDeployment): void {
    this.known.set(deployment.deploymentId, deployment);
  }

  /** True when this run exists and is running or completed: deploying that model version again does nothing. */
  async isRunningOrDone(workflowId: string): Promise<boolean> {
    try {
      const { status } = await this.deployHandle(workflowId).describe();
      return !ENDED_WITHOUT_SUCCESS.includes(status.name);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** Starts the pipeline; undefined when a run of that model version was started meanwhile. */
  async start(input: DeployModelInput): Promise<{ runId: string } | undefined> {
    try {
      const handle = await this.temporal.workflow.start(deployModelWorkflow, {
        workflowId: workflowIds.deploy(input.model, input.version),
        taskQueue: this.taskQueue,
        args: [input],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        typedSearchAttributes: [
          { key: ferryModelKey, value: input.model },
          { key: ferryModelVersionKey, value: input.version },
          { key: ferryDeploymentKey, value: input.deploymentId },
          { key: ferryStageKey, value: 'upload' },
        ],
      });
      return { runId: handle.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
      throw err;
    }
  }

  /**
   * Accepts a deployment id (`model-version`), `model:version`, or a model name (its latest deployment).
   * An id names its run directly, so it is looked up by workflow id (a describe, a few ms, and right after
   * the start); only a bare model name needs visibility. Nothing is waited for: an unknown ref is a fast no.
   */
  async resolve(ref: string): Promise<ResolvedDeployment> {
    const known = this.known.get(ref);
    if (known) return known;
    const readings = runReadings(ref);
    const found = await Promise.all(readings.map((r) => this.runExists(r.workflowId)));
    const byId = readings.find((_, i) => found[i]);
    if (byId) return byId;
    if (!ref.includes(':') && isValidName('model', ref)) {
      const query = `${DEPLOY_RUNS} AND FerryModel = ${JSON.stringify(ref)}`;
      for await (const wf of this.temporal.workflow.list({ query, pageSize: 1 })) {
        const model = wf.typedSearchAttributes.get(ferryModelKey) ?? '';
        const version = wf.typedSearchAttributes.get(ferryModelVersionKey) ?? '';
        return { workflowId: wf.workflowId, model, version, deploymentId: deploymentIdFor(model, version) };
      }
    }
    throw new UnknownDeploymentError(`no deployment "${ref}" (try \`ferry list\`)`);
  }

  /** True when a deploy run of this id exists (in any state). */
  private async runExists(workflowId: string): Promise<boolean> {
    try {
      await this.deployHandle(workflowId).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  async status(ref: string): Promise<DeploymentStatus> {
    return this.statusOfRun((await this.resolve(ref)).workflowId);
  }

  /** The status Query of one deploy run. */
  async statusOfRun(workflowId: string): Promise<DeploymentStatus> {
    try {
      return await this.deployHandle(workflowId).query(deploymentStatusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new UnknownDeploymentError(`no deployment run ${workflowId}`);
      throw err;
    }
  }

  /** What the running activity last reported by heartbeat (the finer-grained progress inside a stage). */
  async activityProgress(ref: string): Promise<ActivityProgress[]> {
    const { workflowId } = await this.resolve(ref);
    const desc = await this.deployHandle(workflowId).describe();
    const pending = desc.raw.pendingActivities ?? [];
    const { defaultPayloadConverter } = await import('@temporalio/common');
    return pending.map((a) => ({
      activity: a.activityType?.name ?? '?',
      attempt: a.attempt ?? 1,
      details: a.heartbeatDetails?.payloads?.[0]
        ? defaultPayloadConverter.fromPayload(a.heartbeatDetails.payloads[0])
        : undefined,
      lastFailure: a.lastFailure?.message ?? undefined,
    }));
  }

  /**
   * Approve a plan with a validated Update: an unknown deployment is refused (UnknownDeploymentError), so
   * is a run that does not wait for an approval (NotAwaitingApprovalError), and the run's validator
   * refuses a plan it cannot apply; nothing is sent that the run would ignore.
   */
  async approve(ref: string, plan: string, approvedBy: string, option?: string): Promise<ChosenPlan> {
    const { workflowId } = await this.resolve(ref);
    await this.assertAwaitingApproval(ref, workflowId);
    try {
      return await this.deployHandle(workflowId).executeUpdate(approvePlanUpdate, {
        args: [{ plan, approvedBy, ...(option !== undefined ? { option } : {}) }],
      });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new UnknownDeploymentError(`no deployment "${ref}"`);
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new FerryError(`approval refused: ${cause}`);
    }
  }

  private async assertAwaitingApproval(ref: string, workflowId: string): Promise<void> {
    const { phase } = await this.statusOfRun(workflowId);
    if (phase !== 'awaiting-approval') {
      throw new NotAwaitingApprovalError(
        `approval refused: deployment ${ref} is not waiting for an approval (phase ${phase})`,
      );
    }
  }

  /**
   * Approve with a Signal (what chat and ops webhooks send). A Signal has no answer, so this checks
   * first that the run waits for an approval, and then watches its status for up to `waitMs` to say
   * whether the run took this plan: it ignores a plan its validator would refuse.
   */
  async approveBySignal(ref: string, plan: string, approvedBy: string, waitMs = 5000): Promise<SignalApproval> {
    const { workflowId } = await this.resolve(ref);
    await this.assertAwaitingApproval(ref, workflowId);
    await this.deployHandle(workflowId).signal(approvePlanSignal, { plan, approvedBy });
    const deadline = Date.now() + waitMs;
    for (;;) {
      const now = await this.statusOfRun(workflowId);
      if (now.chosenPlan) return { taken: now.chosenPlan.plan === plan, chosen: now.chosenPlan };
      if (Date.now() > deadline) return { taken: false };
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits for the deploy run to finish; returns its final status or throws with the failure. */
  async waitForResult(ref: string): Promise<DeploymentStatus> {
    const { workflowId } = await this.resolve(ref);
    try {
      return await this.deployHandle(workflowId).result();
    } catch (err) {
      const status = await this.deployHandle(workflowId)
        .query(deploymentStatusQuery)
        .catch(() => undefined);
      throw new FerryError(status?.error ?? (err as Error).message);
    }
  }

  /** Every deploy run, in visibility's order (without the gateway's `serving` column). */
  async list(): Promise<DeploymentListEntry[]> {
    const out: DeploymentListEntry[] = [];
    for await (const wf of this.temporal.workflow.list({ query: DEPLOY_RUNS })) {
      const model = wf.typedSearchAttributes.get(ferryModelKey) ?? '';
      const version = wf.typedSearchAttributes.get(ferryModelVersionKey) ?? '';
      out.push({
        deploymentId: wf.typedSearchAttributes.get(ferryDeploymentKey) ?? deploymentIdFor(model, version),
        model,
        version,
        stage: wf.typedSearchAttributes.get(ferryStageKey) ?? '',
        workflowId: wf.workflowId,
        status: wf.status.name,
        startTime: wf.startTime.toISOString(),
      });
    }
    return out;
  }

  /** The monitor's status Query; undefined when the deployment has no monitor (not deployed yet, or a canary). */
  async monitorStatus(ref: string): Promise<MonitorStatus | undefined> {
    const { model, version } = await this.resolve(ref);
    try {
      return await this.monitorHandle(model, version).query(monitorStatusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }

  /** Stops serving: the monitor workflow destroys the replicas and ends; resolves when it has. */
  async undeploy(ref: string, requestedBy: string): Promise<MonitorStatus> {
    const { model, version, deploymentId } = await this.resolve(ref);
    const handle = this.monitorHandle(model, version);
    try {
      await handle.signal(undeploySignal, { requestedBy });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        const canary = (await this.status(ref).catch(() => undefined))?.canary;
        if (canary) {
          throw new FerryError(
            `${deploymentId} is revision "${canary.revision}" of deployment ${canary.baseDeploymentId}, not a deployment of its own: ` +
              `remove it with \`ferry rollback ${canary.baseDeploymentId}\` or \`ferry promote ${canary.baseDeploymentId} --revision <other>\`, or undeploy ${canary.baseDeploymentId}`,
          );
        }
        throw new FerryError(`deployment ${deploymentId} is not being served (no running monitor)`);
      }
      throw err;
    }
    return handle.result();
  }

  private deployHandle(workflowId: string) {
    return this.temporal.workflow.getHandle<typeof deployModelWorkflow>(workflowId);
  }

  private monitorHandle(model: string, version: string) {
    return this.temporal.workflow.getHandle<typeof monitorDeploymentWorkflow>(workflowIds.monitor(model, version));
  }
}

/**
 * The runs a reference could name by id: `model:version` (or `deploy:model:version`) once, and
 * `model-version` once per `-` it could be split at (model names may hold `-` too).
 */
function runReadings(ref: string): ResolvedDeployment[] {
  const of = (model: string, version: string): ResolvedDeployment[] =>
    isValidName('model', model) && isValidName('version', version)
      ? [
          {
            workflowId: workflowIds.deploy(model, version),
            model,
            version,
            deploymentId: deploymentIdFor(model, version),
          },
        ]
      : [];
  if (ref.includes(':')) {
    const named = modelVersionRef(ref);
    return named ? of(named.model, named.version) : [];
  }
  const readings: ResolvedDeployment[] = [];
  for (let i = ref.indexOf('-'); i > 0; i = ref.indexOf('-', i + 1))
    readings.push(...of(ref.slice(0, i), ref.slice(i + 1)));
  return readings;
}

/** `model:version` or `deploy:model:version` as its parts, without asking Temporal; undefined for other forms. */
export function modelVersionRef(ref: string): { model: string; version: string; deploymentId: string } | undefined {
  const parts = ref.replace(/^deploy:/, '').split(':');
  if (parts.length !== 2 || !isValidName('model', parts[0]) || !isValidName('version', parts[1])) return undefined;
  return { model: parts[0], version: parts[1], deploymentId: deploymentIdFor(parts[0], parts[1]) };
}
