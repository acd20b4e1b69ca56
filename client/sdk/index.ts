/**
 * Ferry's typed client SDK: everything the CLI, the HTTP API and the dashboard do goes through here.
 * `FerryClient` is the entry point; it composes the pipeline's runs in Temporal (runs.ts), the serving
 * controls on the gateway (serving.ts) and the deploy that feeds the first from the object store
 * (deploy.ts). Its types are the workflows' own (workflows/types.ts, workflows/messages.ts).
 */

import * as net from 'node:net';
import type { Readable } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { clientApiKey } from '../../lib/auth/clientKey';
import { ModelOwnership } from '../../lib/auth/modelOwnership';
import { type FerryConfig, loadConfig } from '../../lib/config';
import { ObjectStore } from '../../lib/store/objectStore';
import type {
  DeploymentStatus as GatewayDeploymentStatus,
  ScalingChange,
  TrafficPolicy,
} from '../../lib/targets/deploymentTarget';
import { temporalConnectionOptions } from '../../lib/temporalConnection';
import type { ChosenPlan, DeploymentStatus, MonitorStatus } from '../../workflows/types';
import { type DeployAccess, deployModelFile, deployModelStream } from './deploy';
import { FerryError } from './errors';
import { DeploymentRuns, type SignalApproval } from './runs';
import { ServingControls, servingOf } from './serving';
import type {
  ActivityProgress,
  DeploymentListEntry,
  DeployOptions,
  DeployStarted,
  InferRequest,
  InferResponse,
  ResolvedDeployment,
  RevisionChange,
} from './types';

export type { EngineOptions, EngineProgress, EngineResult } from '../../lib/optimize/engine';
export type {
  AutoscalingSpec,
  DeploymentStatus as GatewayDeploymentStatus,
  RevisionStatus,
  ScalingChange,
  TrafficPolicy,
  TrafficRule,
} from '../../lib/targets/deploymentTarget';
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
} from '../../workflows/types';
export { sha256OfFile } from './deploy';
export { FerryError, NotAwaitingApprovalError, UnknownDeploymentError } from './errors';
export { optimizeModelFile } from './optimize';
export { DeploymentRuns, modelVersionRef, type SignalApproval } from './runs';
export { ServingControls } from './serving';
export type * from './types';

export class FerryClient {
  /** The pipeline's runs in Temporal: start, resolve, status, approvals, list, undeploy. */
  readonly runs: DeploymentRuns;
  /** The serving controls on the gateway: traffic, scaling, promote, rollback, inference. */
  readonly gateway: ServingControls;
  /** PostgreSQL for model ownership, opened by the first deploy that names a project. */
  private ownershipPool: Pool | undefined;

  private constructor(
    readonly config: FerryConfig,
    readonly temporal: Client,
    private readonly connection: Connection,
    readonly store: ObjectStore,
  ) {
    this.runs = new DeploymentRuns(temporal, config.temporal.taskQueue);
    this.gateway = new ServingControls(
      config.gateway.url,
      config.postgres.url,
      this.runs,
      () => clientApiKey(config),
      async (namespace) =>
        (await import('../../lib/targets/kubernetes/configuredTarget')).configuredKubernetesTarget(config, namespace),
    );
  }

  static async connect(config: FerryConfig = loadConfig()): Promise<FerryClient> {
    // gRPC retries a refused connection until its timeout; a plain TCP connect is refused at once, so a
    // stack that is down is reported in milliseconds rather than after connectTimeout.
    await tcpReachable(config.temporal.address).catch((err: NodeJS.ErrnoException) => {
      throw new FerryError(
        `Temporal at ${config.temporal.address} is not reachable (${err.code ?? err.message}); start the stack with: bash infra/stack.sh start`,
      );
    });
    const connection = await Connection.connect({
      ...temporalConnectionOptions(config.temporal),
      connectTimeout: '5s',
    }).catch((err: Error) => {
      throw new FerryError(
        `Temporal at ${config.temporal.address} is not reachable (${err.message}); start the stack with: bash infra/stack.sh start`,
      );
    });
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    return new FerryClient(config, temporal, connection, new ObjectStore(config.s3));
  }

  async close(): Promise<void> {
    await this.connection.close();
    await this.gateway.close();
    await this.ownershipPool?.end();
    this.ownershipPool = undefined;
  }

  /** What a deploy goes through (client/sdk/deploy.ts). */
  private deployParts() {
    return {
      defaults: this.config.deploy,
      store: this.store,
      runs: this.runs,
      serving: this.gateway,
      claimModel: (model: string, project: string) => {
        if (!this.ownershipPool) {
          this.ownershipPool = new Pool({
            connectionString: this.config.postgres.url,
            max: 2,
            connectionTimeoutMillis: 5000,
          });
          this.ownershipPool.on('error', () => {});
        }
        return new ModelOwnership(this.ownershipPool).claim(model, project);
      },
    };
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

  // ---- the pipeline (see DeploymentRuns) ----

  /** One-click (or review) deploy: stream the file to the object store, then start the workflow. */
  deploy(filePath: string, opts: DeployOptions = {}): Promise<DeployStarted> {
    return deployModelFile(this.deployParts(), filePath, opts);
  }

  /** A deploy from a stream (the API's upload), never written to local disk; see deployModelStream. */
  deployStream(
    body: Readable,
    opts: DeployOptions & { model: string; maxBytes: number; fileName: string; access?: DeployAccess },
  ): Promise<DeployStarted> {
    return deployModelStream(this.deployParts(), body, opts);
  }

  /** Accepts a deployment id (`model-version`), `model:version`, or a model name (its latest deployment). */
  resolve(ref: string): Promise<ResolvedDeployment> {
    return this.runs.resolve(ref);
  }

  status(ref: string): Promise<DeploymentStatus> {
    return this.runs.status(ref);
  }

  /** What the running activity last reported by heartbeat (the finer-grained progress inside a stage). */
  activityProgress(ref: string): Promise<ActivityProgress[]> {
    return this.runs.activityProgress(ref);
  }

  /** Approve a plan with a validated Update: an unknown plan or a run that is not waiting is refused at once. */
  approve(ref: string, plan: string, approvedBy = 'cli', option?: string): Promise<ChosenPlan> {
    return this.runs.approve(ref, plan, approvedBy, option);
  }

  /** Approve with a Signal (what chat and ops webhooks send), then say whether the run took the plan. */
  approveBySignal(ref: string, plan: string, approvedBy = 'chatops', waitMs?: number): Promise<SignalApproval> {
    return this.runs.approveBySignal(ref, plan, approvedBy, waitMs);
  }

  /** Waits for the deploy run to finish; returns its final status or throws with the failure. */
  waitForResult(ref: string): Promise<DeploymentStatus> {
    return this.runs.waitForResult(ref);
  }

  /** Every deploy run, with where it serves now according to the gateway. */
  async list(): Promise<DeploymentListEntry[]> {
    const [runs, served] = await Promise.all([this.runs.list(), this.gateway.served()]);
    return runs.map((run) => ({ ...run, serving: servingOf(run, served) }));
  }

  /** The monitor's view of a served deployment; undefined when it has no monitor. */
  serving(ref: string): Promise<MonitorStatus | undefined> {
    return this.runs.monitorStatus(ref);
  }

  /** Stops serving: the monitor workflow destroys the replicas and ends; resolves when it has. */
  undeploy(ref: string): Promise<MonitorStatus> {
    return this.runs.undeploy(ref, 'cli');
  }

  // ---- serving on the gateway (see ServingControls) ----

  infer(ref: string, request: InferRequest): Promise<InferResponse> {
    return this.gateway.infer(ref, request);
  }

  /** The gateway's view of a served deployment: revisions, traffic split and rules, replicas, autoscaling. */
  gatewayStatus(ref: string): Promise<GatewayDeploymentStatus> {
    return this.gateway.status(ref);
  }

  /** Changes the traffic split and header rules; see ServingControls.setTraffic. */
  setTraffic(ref: string, change: TrafficPolicy): Promise<GatewayDeploymentStatus> {
    return this.gateway.setTraffic(ref, change);
  }

  /** Changes replica counts, autoscaling and scale to zero; see ServingControls.setScaling. */
  setScaling(ref: string, change: ScalingChange): Promise<GatewayDeploymentStatus> {
    return this.gateway.setScaling(ref, change);
  }

  /** All traffic to `revision`, the others removed; see ServingControls.promote. */
  promote(ref: string, revision: string): Promise<RevisionChange> {
    return this.gateway.promote(ref, revision);
  }

  /** Back to the deployment's first revision, the others removed; see ServingControls.rollback. */
  rollback(ref: string): Promise<RevisionChange> {
    return this.gateway.rollback(ref);
  }
}

/** Resolves once a TCP connection to `host:port` opens (then closes it); rejects with the socket's error. */
function tcpReachable(address: string, timeoutMs = 5000): Promise<void> {
  const { hostname, port } = new URL(`tcp://${address}`);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port), timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    });
    socket.once('error', reject);
  });
}
