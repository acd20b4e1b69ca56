/** The SDK's own request and answer shapes; the pipeline's are the workflows' (workflows/types.ts). */
import type { DeploymentStatus as GatewayDeploymentStatus } from '../../lib/targets/deploymentTarget';
import type { DeployMode, DeployModelInput, MonitorSettings, OptimizeSettings } from '../../workflows/types';

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
  /** The project the deployment belongs to and whether inference needs no key; absent: `default`, keyed. */
  access?: DeployModelInput['access'];
  /**
   * Where it runs: `{kind: 'local'}` or `{kind: 'kubernetes', namespace?}`; absent, where the cost engine's
   * choice deploys (the cheapest deployable option that meets the SLO and budget).
   */
  target?: DeployModelInput['target'];
  /** The workload profile and constraints the deploy stage plans with (lib/cost/deployStage.ts). */
  cost?: DeployModelInput['cost'];
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

/** A deployment reference resolved to its pipeline run. */
export interface ResolvedDeployment {
  workflowId: string;
  model: string;
  version: string;
  deploymentId: string;
}
