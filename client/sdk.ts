/**
 * Ferry's typed client SDK: everything the CLI, the HTTP API and the dashboard do goes through here.
 * Its types are the workflows' own (workflows/types.ts, workflows/messages.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { Pool } from 'pg';
import { type FerryConfig, loadConfig } from '../lib/config';
import { FerryRepository } from '../lib/db/repository';
import { applyScalingChange, MAX_REVISIONS } from '../lib/gateway/deploymentSpec';
import { normalizeTrafficPolicy } from '../lib/gateway/trafficPolicy';
import { ONE_CLICK_TECHNIQUES } from '../lib/optimize/plans';
import { ObjectStore, objectKeys } from '../lib/store/objectStore';
import {
  DeploymentNotFoundError,
  type DeploymentStatus as GatewayDeploymentStatus,
  type ScalingChange,
  type TrafficPolicy,
} from '../lib/targets/deploymentTarget';
import { GatewayRequestError, LocalTarget } from '../lib/targets/local';
import { RevisionConflictError, rulesTo, specKeepingOnly } from '../lib/targets/revisions';
import {
  approvePlanSignal,
  approvePlanUpdate,
  deploymentStatusQuery,
  monitorStatusQuery,
  undeploySignal,
} from '../workflows/messages';
import { ferryDeploymentKey, ferryModelKey, ferryModelVersionKey, ferryStageKey } from '../workflows/searchAttributes';
import {
  type CanaryRequest,
  type ChosenPlan,
  canaryRevisionName,
  type DeployMode,
  type DeployModelInput,
  type DeploymentStatus,
  deploymentIdFor,
  type MonitorSettings,
  type MonitorStatus,
  type OptimizeSettings,
  workflowIds,
} from '../workflows/types';

export type { EngineOptions, EngineProgress, EngineResult } from '../lib/optimize/engine';
export type {
  AutoscalingSpec,
  DeploymentStatus as GatewayDeploymentStatus,
  RevisionStatus,
  ScalingChange,
  TrafficPolicy,
  TrafficRule,
} from '../lib/targets/deploymentTarget';
export type {
  AccuracyBudget,
  CanaryStatus,
  CandidateMeasurement,
  ChosenPlan,
  DeployMode,
  DeploymentStatus,
  MonitorStatus,
  OptimizationCandidate,
  OptimizationTable,
  OptimizeSettings,
  PlanOption,
  ServingSessionOptions,
  TargetSpec,
} from '../workflows/types';

export interface DeployOptions {
  /** Model name; defaults to the file name without extension. */
  model?: string;
  /** Version; defaults to `sha-` + the first 12 hex digits of the file's sha256, so the same file is the same version. */
  version?: string;
  mode?: DeployMode;
  approvalTimeoutMs?: number;
  replicas?: number;
  monitor?: Partial<MonitorSettings>;
  /** How the optimize stage searches: techniques, accuracy budget, target. Defaults: one-click tries ONE_CLICK_TECHNIQUES, review mode every technique; cosine/top-1 ≥ 0.99. */
  optimize?: OptimizeSettings;
  /**
   * Canary release: the new version goes through the pipeline as usual, but its deploy stage adds it as
   * a revision (named after the version, see canaryRevisionName) of a live deployment of the same model
   * — `of` (a deployment ref), or the model's newest live deployment — with `percent` (0–100) of its
   * traffic; the other revisions keep the rest, scaled proportionally, and their replicas keep running.
   * The revision follows that deployment's scaling (`replicas` cannot be given). Checked before anything
   * is uploaded: a model with no live deployment is refused at once.
   */
  canary?: { percent: number; of?: string };
  onUploadProgress?: (sentBytes: number, totalBytes: number) => void;
}

/** What a promote or a rollback did to a served deployment. */
export interface RevisionChange {
  deploymentId: string;
  /** The revision that now has all of the traffic. */
  kept: string;
  /** The revisions removed (their replicas drained and stopped); empty when `kept` was already alone. */
  removed: string[];
  /** The gateway's view afterwards. */
  status: GatewayDeploymentStatus;
}

export interface DeployStarted {
  deploymentId: string;
  workflowId: string;
  model: string;
  version: string;
  runId?: string;
  /** True when this model version was already deployed (or deploying): nothing new was started. */
  alreadyExisted: boolean;
}

export interface DeploymentListEntry {
  deploymentId: string;
  model: string;
  version: string;
  stage: string;
  workflowId: string;
  status: string;
  startTime: string;
  /**
   * Where it serves now, from the gateway: its own deployment's state (and revisions), `revision R of
   * <deployment>, P%` for a canary version, `not served`, or `unknown` when the gateway cannot be reached.
   */
  serving?: string;
}

export interface ActivityProgress {
  activity: string;
  attempt: number;
  details?: unknown;
  lastFailure?: string;
}

export interface InferTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
  parameters?: Record<string, unknown>;
}
export interface InferRequest {
  id?: string;
  inputs: InferTensor[];
  outputs?: Array<{ name: string }>;
  parameters?: Record<string, unknown>;
}
export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: InferTensor[];
}

export class FerryError extends Error {}

export interface ResolvedDeployment {
  workflowId: string;
  model: string;
  version: string;
  deploymentId: string;
}

/** How long a just-started run may take to appear in Temporal's visibility (list) queries. */
const VISIBILITY_LAG_MS = 3000;
export class UnknownDeploymentError extends FerryError {}

const MODEL_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/** Read-modify-write rounds of a promote or rollback lost to concurrent changes before it gives up. */
const MAX_CONFLICTS = 4;
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const defaultMonitorSettings: MonitorSettings = {
  intervalMs: Number(process.env.FERRY_MONITOR_INTERVAL_MS ?? 15_000),
  idleHibernateMs: Number(process.env.FERRY_IDLE_HIBERNATE_MS ?? 15 * 60_000),
};

export class FerryClient {
  /** Deployments this client started or found by id, so they resolve before visibility indexes them. */
  private readonly started = new Map<string, ResolvedDeployment>();
  /** The gateway's control API (the `local` target), for traffic and scaling. */
  private readonly gateway: LocalTarget;
  /** PostgreSQL, opened on first use (promote and rollback record what they did). */
  private db: { pool: Pool; repo: FerryRepository } | undefined;

  private constructor(
    readonly config: FerryConfig,
    readonly temporal: Client,
    private readonly connection: Connection,
    readonly store: ObjectStore,
  ) {
    this.gateway = new LocalTarget(config.gateway.url);
  }

  static async connect(config: FerryConfig = loadConfig()): Promise<FerryClient> {
    const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5s' }).catch(
      (err: Error) => {
        throw new FerryError(
          `Temporal at ${config.temporal.address} is not reachable (${err.message}); start the stack with: bash infra/stack.sh start`,
        );
      },
    );
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    return new FerryClient(config, temporal, connection, new ObjectStore(config.s3));
  }

  async close(): Promise<void> {
    await this.connection.close();
    await this.db?.pool.end();
    this.db = undefined;
  }

  private repository(): FerryRepository {
    if (!this.db) {
      const pool = new Pool({ connectionString: this.config.postgres.url, max: 2, connectionTimeoutMillis: 5000 });
      pool.on('error', () => {
        /* an idle client lost: the pool replaces it on next use */
      });
      this.db = { pool, repo: new FerryRepository(pool) };
    }
    return this.db.repo;
  }

  /** Temporal Web UI page of a workflow run. */
  temporalUiUrl(workflowId: string): string {
    return `${this.config.temporal.uiUrl}/namespaces/${this.config.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}`;
  }

  dashboardUrl(deploymentId?: string): string {
    return deploymentId
      ? `${this.config.api.url}/deployments/${encodeURIComponent(deploymentId)}`
      : this.config.api.url;
  }

  /** One-click (or review) deploy: stream the file to the object store, then start the workflow. */
  async deploy(filePath: string, opts: DeployOptions = {}): Promise<DeployStarted> {
    const info = await stat(filePath).catch(() => {
      throw new FerryError(`model file ${filePath} does not exist`);
    });
    if (!info.isFile()) throw new FerryError(`${filePath} is not a file`);
    const model =
      opts.model ??
      path
        .basename(filePath)
        .replace(/\.onnx$/i, '')
        .toLowerCase()
        .replace(/[^a-z0-9_.-]+/g, '-');
    if (!MODEL_NAME.test(model)) {
      throw new FerryError(
        `model name "${model}" is not allowed: use lowercase letters, digits, '.', '_' or '-' (max 63)`,
      );
    }
    const sha256 = await sha256OfFile(filePath);
    const version = opts.version ?? `sha-${sha256.slice(0, 12)}`;
    if (!VERSION_NAME.test(version))
      throw new FerryError(`version "${version}" is not allowed: use letters, digits, '.', '_' or '-'`);
    const deploymentId = deploymentIdFor(model, version);
    const workflowId = workflowIds.deploy(model, version);
    this.started.set(deploymentId, { deploymentId, workflowId, model, version });

    // Same model version already deployed or deploying: do not upload or run it again.
    const existing = await this.describeIfExists(workflowId);
    if (existing && !['FAILED', 'TERMINATED', 'CANCELLED', 'TIMED_OUT'].includes(existing)) {
      return { deploymentId, workflowId, model, version, alreadyExisted: true };
    }
    // A canary needs a live deployment to join: find it now rather than after the optimize stage.
    const canary = opts.canary ? await this.canaryTarget(model, version, opts) : undefined;

    const staged = await this.store.putFile(objectKeys.staging(randomUUID()), filePath, (sent) =>
      opts.onUploadProgress?.(sent, info.size),
    );
    if (staged.sha256 !== sha256) {
      await this.store.delete(staged.key);
      throw new FerryError(`${filePath} changed while it was being uploaded; try again`);
    }
    const input: DeployModelInput = {
      deploymentId,
      model,
      version,
      upload: { objectKey: staged.key, sha256, sizeBytes: staged.sizeBytes, fileName: path.basename(filePath) },
      mode: opts.mode ?? 'one-click',
      approvalTimeoutMs: opts.approvalTimeoutMs ?? Number(process.env.FERRY_APPROVAL_TIMEOUT_MS ?? 60 * 60_000),
      replicas: opts.replicas ?? 1,
      monitor: { ...defaultMonitorSettings, ...opts.monitor },
      optimize: {
        ...opts.optimize,
        techniques:
          opts.optimize?.techniques ?? ((opts.mode ?? 'one-click') === 'one-click' ? ONE_CLICK_TECHNIQUES : undefined),
      },
      ...(canary ? { canary } : {}),
    };
    try {
      const handle = await this.temporal.workflow.start('deployModelWorkflow', {
        workflowId,
        taskQueue: this.config.temporal.taskQueue,
        args: [input],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        typedSearchAttributes: [
          { key: ferryModelKey, value: model },
          { key: ferryModelVersionKey, value: version },
          { key: ferryDeploymentKey, value: deploymentId },
          { key: ferryStageKey, value: 'upload' },
        ],
      });
      return { deploymentId, workflowId, model, version, runId: handle.firstExecutionRunId, alreadyExisted: false };
    } catch (err) {
      await this.store.delete(staged.key); // nothing half-written stays behind
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        return { deploymentId, workflowId, model, version, alreadyExisted: true };
      throw err;
    }
  }

  /**
   * The live deployment a canary of `model` joins: `opts.canary.of`, or the model's newest deployment
   * on the gateway. Refuses (FerryError) a bad percent, a model with no live deployment, another
   * model's deployment, a taken revision name and a deployment with no room for another revision.
   */
  private async canaryTarget(model: string, version: string, opts: DeployOptions): Promise<CanaryRequest> {
    const { percent, of } = opts.canary!;
    if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) {
      throw new FerryError(`canary refused: the percent must be a number from 0 to 100, got ${String(percent)}`);
    }
    if (opts.replicas !== undefined) {
      throw new FerryError(
        "canary refused: a canary revision follows its deployment's scaling; leave out replicas and change them with `ferry scale`",
      );
    }
    let base: GatewayDeploymentStatus;
    if (of !== undefined) {
      try {
        base = await this.servedStatus(of);
      } catch (err) {
        if (err instanceof UnknownDeploymentError) throw new FerryError(`canary refused: ${err.message}`);
        throw err;
      }
    } else {
      const live = (await this.gateway.list())
        .filter((d) => d.model === model)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      if (!live.length) {
        throw new FerryError(
          `canary refused: model "${model}" has no live deployment to add it to (the gateway at ${this.config.gateway.url} serves none of it); ` +
            `deploy it first without --canary, or name a deployment with --canary-of`,
        );
      }
      base = live[0];
    }
    if (base.model !== model) {
      throw new FerryError(
        `canary refused: deployment ${base.id} serves model "${base.model}", not "${model}" (a canary is another version of the same model)`,
      );
    }
    const revision = canaryRevisionName(version);
    if (base.revisions.some((r) => r.name === revision)) {
      throw new FerryError(`canary refused: deployment ${base.id} already has a revision "${revision}"`);
    }
    if (base.revisions.length >= MAX_REVISIONS) {
      throw new FerryError(
        `canary refused: deployment ${base.id} already has ${base.revisions.length} revisions (at most ${MAX_REVISIONS}); promote one or roll back first`,
      );
    }
    return { of: base.id, percent };
  }

  /** Accepts a deployment id (`model-version`), `model:version`, or a model name (its latest deployment). */
  async resolve(ref: string): Promise<ResolvedDeployment> {
    if (ref.includes(':')) {
      const [model, version] = ref.replace(/^deploy:/, '').split(':');
      return {
        workflowId: workflowIds.deploy(model, version),
        model,
        version,
        deploymentId: deploymentIdFor(model, version),
      };
    }
    const known = this.started.get(ref);
    if (known) return known;
    const quoted = JSON.stringify(ref);
    const query = `WorkflowType = 'deployModelWorkflow' AND (FerryDeployment = ${quoted} OR FerryModel = ${quoted})`;
    // Visibility is indexed shortly after a run starts: look again for a moment before saying no.
    const deadline = Date.now() + VISIBILITY_LAG_MS;
    for (;;) {
      for await (const wf of this.temporal.workflow.list({ query, pageSize: 1 })) {
        const model = wf.typedSearchAttributes.get(ferryModelKey) ?? '';
        const version = wf.typedSearchAttributes.get(ferryModelVersionKey) ?? '';
        return { workflowId: wf.workflowId, model, version, deploymentId: deploymentIdFor(model, version) };
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new UnknownDeploymentError(`no deployment named "${ref}" (try \`ferry list\`)`);
  }

  private deployHandle(workflowId: string): WorkflowHandle {
    return this.temporal.workflow.getHandle(workflowId);
  }

  async status(ref: string): Promise<DeploymentStatus> {
    const { workflowId } = await this.resolve(ref);
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

  /** Approve a plan with a validated Update: an unknown plan or a run that is not waiting is refused at once. */
  async approve(ref: string, plan: string, approvedBy = 'cli'): Promise<ChosenPlan> {
    const { workflowId } = await this.resolve(ref);
    try {
      return await this.deployHandle(workflowId).executeUpdate(approvePlanUpdate, { args: [{ plan, approvedBy }] });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      if (/already completed/.test(cause)) {
        throw new FerryError(
          `approval refused: deployment ${ref} is not waiting for an approval (its pipeline run has finished)`,
        );
      }
      throw new FerryError(`approval refused: ${cause}`);
    }
  }

  /** Approve with a Signal (what chat and ops webhooks send): fire and forget. */
  async approveBySignal(ref: string, plan: string, approvedBy = 'chatops'): Promise<void> {
    const { workflowId } = await this.resolve(ref);
    await this.deployHandle(workflowId).signal(approvePlanSignal, { plan, approvedBy });
  }

  /** Waits for the deploy run to finish; returns its final status or throws with the failure. */
  async waitForResult(ref: string): Promise<DeploymentStatus> {
    const { workflowId } = await this.resolve(ref);
    try {
      return (await this.deployHandle(workflowId).result()) as DeploymentStatus;
    } catch (err) {
      const status = await this.deployHandle(workflowId)
        .query(deploymentStatusQuery)
        .catch(() => undefined);
      throw new FerryError(status?.error ?? (err as Error).message);
    }
  }

  async list(): Promise<DeploymentListEntry[]> {
    const out: DeploymentListEntry[] = [];
    const served = await this.gateway.list().catch(() => undefined);
    for await (const wf of this.temporal.workflow.list({ query: `WorkflowType = 'deployModelWorkflow'` })) {
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
      out[out.length - 1].serving = servingOf(out[out.length - 1], served);
    }
    return out;
  }

  async serving(ref: string): Promise<MonitorStatus | undefined> {
    const { model, version } = await this.resolve(ref);
    try {
      return await this.temporal.workflow.getHandle(workflowIds.monitor(model, version)).query(monitorStatusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }

  async infer(ref: string, request: InferRequest): Promise<InferResponse> {
    const status = await this.status(ref);
    if (!status.inferUrl)
      throw new FerryError(`deployment ${status.deploymentId} has no endpoint yet (it is at: ${status.phase})`);
    const res = await fetch(status.inferUrl, {
      method: 'POST',
      // A canary version shares its base deployment's endpoint: ask for its revision by name.
      headers: {
        'content-type': 'application/json',
        ...(status.canary ? { 'x-ferry-variant': status.canary.revision } : {}),
      },
      body: JSON.stringify(request),
    }).catch((err: Error) => {
      throw new FerryError(`endpoint ${status.inferUrl} is not reachable: ${err.message}`);
    });
    const body = (await res.json().catch(() => ({}))) as InferResponse & { error?: string };
    if (!res.ok) throw new FerryError(`inference failed (${res.status}): ${body.error ?? res.statusText}`);
    return body;
  }

  /** Stops serving: the monitor workflow destroys the replicas and ends; resolves when it has. */
  async undeploy(ref: string): Promise<MonitorStatus> {
    const { model, version, deploymentId } = await this.resolve(ref);
    const handle = this.temporal.workflow.getHandle(workflowIds.monitor(model, version));
    try {
      await handle.signal(undeploySignal, { requestedBy: 'cli' });
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
    return (await handle.result()) as MonitorStatus;
  }

  // ---- serving: traffic splits and scaling on the gateway ----

  /** The gateway's view of a served deployment: revisions, traffic split and rules, replicas, autoscaling. */
  async gatewayStatus(ref: string): Promise<GatewayDeploymentStatus> {
    return this.servedStatus(ref);
  }

  /**
   * Changes how requests are shared between the deployment's revisions, from the next request on; no
   * replica restarts. Given fields replace the current ones and left-out ones stay: `{split}` keeps the
   * header rules, `{rules}` keeps the split. Checked here first (percentages add up to 100, every named
   * revision exists), so a bad change is refused without sending anything.
   */
  async setTraffic(ref: string, change: TrafficPolicy): Promise<GatewayDeploymentStatus> {
    const current = await this.servedStatus(ref);
    const traffic = { split: change.split ?? current.traffic.split, rules: change.rules ?? current.traffic.rules };
    try {
      normalizeTrafficPolicy(
        traffic,
        current.revisions.map((r) => r.name),
      );
    } catch (err) {
      throw new FerryError(`traffic of ${current.id} not changed: ${(err as Error).message}`);
    }
    return this.gatewayCall(current.id, 'traffic', () => this.gateway.setTraffic(current.id, traffic));
  }

  /**
   * Changes replica counts, autoscaling and scale to zero; nothing else (revisions, images, traffic) and
   * no running replica is restarted. `{replicas: N}` alone: a fixed N per revision (autoscaling off);
   * `{autoscaling: {...}}`: merged over the current settings (or the defaults when it was off), with
   * `replicas` then the count to start from; `{scaleToZeroAfterMs: null}`: no scale to zero on idle.
   * A lower count drains the extra replicas (an autoscaler only after its scale-down delay); a
   * hibernated deployment stays hibernated and wakes with the new counts. Checked here first.
   */
  async setScaling(ref: string, change: ScalingChange): Promise<GatewayDeploymentStatus> {
    const current = await this.servedStatus(ref);
    const body: ScalingChange =
      change.replicas !== undefined && change.autoscaling === undefined ? { ...change, autoscaling: null } : change;
    try {
      applyScalingChange(
        {
          replicas: current.spec.replicas ?? 1,
          autoscaling: current.autoscaling,
          scaleToZeroAfterMs: current.scaleToZeroAfterMs,
        },
        body,
      );
    } catch (err) {
      throw new FerryError(`scaling of ${current.id} not changed: ${(err as Error).message}`);
    }
    return this.gatewayCall(current.id, 'scaling', () => this.gateway.setScaling(current.id, body));
  }

  // ---- canary releases: promote, roll back ----

  /**
   * Gives revision `revision` all of the traffic (header rules naming other revisions are dropped),
   * then removes the other revisions: their replicas finish the requests they hold and stop; no
   * request fails and the kept revision's replicas are not restarted. Resolves once they have stopped.
   * Recorded in PostgreSQL (a `promoted` event on the deployment; canary versions' rows become
   * `promoted` or `removed`). An unknown revision is refused and nothing changes. Promoting the only
   * revision changes nothing. A hibernated deployment is woken (the removal is a whole-spec change).
   */
  async promote(ref: string, revision: string): Promise<RevisionChange> {
    return this.keepOnly(ref, 'promoted', (current) => {
      const names = current.revisions.map((r) => r.name);
      if (!names.includes(revision)) {
        throw new FerryError(
          `promote refused: deployment ${current.id} has no revision "${revision}" (it has: ${names.join(', ')}); nothing changed`,
        );
      }
      return revision;
    });
  }

  /**
   * Rolls a canary back: the deployment's first revision — the one it served before canaries were added
   * (they are appended) — gets all of the traffic and every other revision is removed, as by
   * `promote(ref, <first revision>)`. Refused when the deployment has one revision only (a promoted
   * canary replaced the revision before it: deploy that version again with a canary and promote it).
   */
  async rollback(ref: string): Promise<RevisionChange> {
    return this.keepOnly(ref, 'rolled-back', (current) => {
      if (current.revisions.length < 2) {
        throw new FerryError(
          `rollback refused: deployment ${current.id} serves one revision ("${current.revisions[0]?.name}") and has no canary to remove; ` +
            'a promoted revision cannot be rolled back (deploy the previous version with --canary and promote it)',
        );
      }
      return current.revisions[0].name;
    });
  }

  /**
   * Reads the deployment, lets `choose` pick the revision to keep, and changes it only over what it
   * read (If-Match): after a concurrent change it reads again (a few times), never undoing that change blindly.
   */
  private async keepOnly(
    ref: string,
    kind: 'promoted' | 'rolled-back',
    choose: (current: GatewayDeploymentStatus) => string,
  ): Promise<RevisionChange> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.servedStatus(ref);
      const keep = choose(current);
      const removed = current.revisions.map((r) => r.name).filter((n) => n !== keep);
      let status: GatewayDeploymentStatus | undefined = current;
      if (removed.length) {
        status = await this.gatewayCall(current.id, 'revisions', async () => {
          try {
            // 1. Every new request to `keep`, from the next request on.
            const traffic = { split: { [keep]: 100 }, rules: rulesTo(current.traffic.rules, keep) };
            const routed = await this.gateway.setTraffic(current.id, traffic, { ifMatch: current.specVersion });
            // 2. The others removed: out of routing, drained, stopped; `keep` is applied unchanged (no restart).
            const spec = specKeepingOnly(routed, keep);
            return spec ? await this.gateway.apply(spec, { ifMatch: routed.specVersion }) : routed;
          } catch (err) {
            if (err instanceof GatewayRequestError && err.status === 409 && attempt < MAX_CONFLICTS) return undefined; // changed meanwhile: read again
            if (err instanceof RevisionConflictError)
              throw new FerryError(
                `${kind === 'promoted' ? 'promote' : 'rollback'} of ${current.id} stopped: ${err.message}`,
              );
            throw err;
          }
        });
        if (!status) continue;
      }
      try {
        const repo = this.repository();
        if (removed.length && (await repo.getDeployment(current.id)))
          await repo.recordEvent(current.id, kind, { revision: keep, removed });
        await repo.settleCanaries(current.id, keep, removed);
      } catch (err) {
        throw new FerryError(
          `${current.id}: revision "${keep}" serves all of the traffic now, but recording it in PostgreSQL failed (${(err as Error).message}); run the command again to record it`,
        );
      }
      return { deploymentId: current.id, kept: keep, removed, status };
    }
  }

  /**
   * Finds `ref` on the gateway: as a gateway deployment id first (deployments applied without the
   * pipeline have no workflow), else resolved like every other command (model:version, model name);
   * a canary version resolves to the deployment it is a revision of.
   */
  private async servedStatus(ref: string): Promise<GatewayDeploymentStatus> {
    if (!ref.includes(':')) {
      try {
        return await this.gateway.status(ref);
      } catch (err) {
        if (!(err instanceof DeploymentNotFoundError)) throw err; // e.g. the gateway is down: say so
      }
    }
    let resolved: ResolvedDeployment;
    try {
      resolved = await this.resolve(ref);
    } catch (err) {
      if (!(err instanceof UnknownDeploymentError)) throw err;
      throw new UnknownDeploymentError(
        `no deployment "${ref}": the gateway at ${this.config.gateway.url} serves none by that id, and no model or deployment has that name (try \`ferry list\`)`,
      );
    }
    try {
      return await this.gateway.status(resolved.deploymentId);
    } catch (err) {
      if (!(err instanceof DeploymentNotFoundError)) throw err;
      const canary = (
        await this.deployHandle(resolved.workflowId)
          .query(deploymentStatusQuery)
          .catch(() => undefined)
      )?.canary;
      if (canary) {
        const base = await this.gateway.status(canary.baseDeploymentId).catch(() => undefined);
        if (base) return base;
      }
      throw new UnknownDeploymentError(
        `deployment ${resolved.deploymentId} is not served by the gateway at ${this.config.gateway.url} (not deployed yet, or undeployed; see \`ferry status ${ref}\`)`,
      );
    }
  }

  /** A control call whose refusal reads as what was not changed and why. */
  private async gatewayCall<T>(id: string, what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof DeploymentNotFoundError)
        throw new UnknownDeploymentError(`deployment ${id} was removed from the gateway meanwhile`);
      if (err instanceof GatewayRequestError && err.status < 500)
        throw new FerryError(`${what} of ${id} not changed: ${err.gatewayMessage}`);
      throw err;
    }
  }

  private async describeIfExists(workflowId: string): Promise<string | undefined> {
    try {
      return (await this.deployHandle(workflowId).describe()).status.name;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }
}

/**
 * The optimize stage without the workflow (what `ferry optimize` runs): analysis, recommendations and every
 * candidate measured against the original, with candidate models written to `opts.workDir`. Needs no Ferry
 * services. The engine runs in a child process, so this process stays responsive (progress bars).
 */
export async function optimizeModelFile(
  filePath: string,
  opts: import('../lib/optimize/engineProcess').EngineChildOptions & {
    onProgress?: (p: import('../lib/optimize/engine').EngineProgress) => void;
  },
): Promise<import('../lib/optimize/engine').EngineResult> {
  const info = await stat(filePath).catch(() => undefined);
  if (!info?.isFile()) throw new FerryError(`model file ${filePath} cannot be read`);
  const { runOptimizationEngineInChild } = await import('../lib/optimize/engineProcess');
  const { onProgress, ...rest } = opts;
  return runOptimizationEngineInChild(filePath, rest, onProgress);
}

export async function sha256OfFile(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A list entry's serving state from the gateway's deployments (undefined: the gateway did not answer). */
function servingOf(entry: DeploymentListEntry, served: GatewayDeploymentStatus[] | undefined): string {
  if (!served) return 'unknown (gateway not reachable)';
  const own = served.find((d) => d.id === entry.deploymentId);
  if (own) {
    const revisions =
      own.revisions.length === 1 && own.revisions[0].name === 'default'
        ? ''
        : ` (${own.revisions.map((r) => `${r.name} ${r.percent}%`).join(', ')})`;
    return `${own.state}${revisions}`;
  }
  const revision = canaryRevisionName(entry.version);
  for (const d of served) {
    const r = d.model === entry.model ? d.revisions.find((x) => x.name === revision) : undefined;
    if (r) return `revision ${revision} of ${d.id}, ${r.percent}%`;
  }
  return 'not served';
}
