/**
 * The vocabulary shared by workflows, activities, the client SDK, the CLI and the dashboard.
 * Plain data only: this file is bundled into the workflow sandbox.
 */

export type DeployMode = 'one-click' | 'review';

/** The five pipeline stages, in order. */
export const PIPELINE_STAGES = ['upload', 'optimize', 'container', 'deploy', 'monitor'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/** Where a deployment run is now: a pipeline stage, waiting for a human, or finished. */
export type DeploymentPhase = PipelineStage | 'awaiting-approval' | 'live' | 'failed';

export type StageState = 'pending' | 'running' | 'done' | 'failed';

export interface StageRecord {
  stage: PipelineStage;
  state: StageState;
  startedAt?: string;
  finishedAt?: string;
  detail?: string;
}

/** A model file streamed to the object store before the workflow starts (never bytes in a payload). */
export interface StagedUpload {
  objectKey: string;
  sha256: string;
  sizeBytes: number;
  fileName: string;
}

export interface MonitorSettings {
  /** How often the monitor collects metrics from the serving replicas. */
  intervalMs: number;
  /** Stop the replicas after this long without a request; the next request wakes them. */
  idleHibernateMs: number;
}

export interface DeployModelInput {
  deploymentId: string;
  model: string;
  version: string;
  upload: StagedUpload;
  mode: DeployMode;
  /** Review mode: how long to wait for an approval before taking the default plan. */
  approvalTimeoutMs: number;
  replicas: number;
  monitor: MonitorSettings;
}

export interface TensorSpec {
  name: string;
  dataType: string;
  shape: Array<number | string | null>;
}

/** What the optimize stage learned about the model (a JSON summary of lib/onnx's analysis). */
export interface ModelSummary {
  parameterCount: number;
  weightBytes: number;
  nodeCount: number;
  opHistogram: Record<string, number>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opsets: Array<{ domain: string; version: number }>;
  dynamicDims: string[];
}

export interface PlanOption {
  id: string;
  title: string;
  description: string;
  /** Expected effect, in words, before anything is measured. */
  expectedEffect: string;
}

export interface LatencyFigures {
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
}

export interface BenchmarkReport {
  plan: string;
  iterations: number;
  batchSize: number;
  original: { sizeBytes: number; latency: LatencyFigures };
  candidate: { sizeBytes: number; latency: LatencyFigures };
  /** Largest absolute difference between the two models' outputs on the same inputs. */
  maxAbsDiff: number;
  speedup: number;
  sizeRatio: number;
}

export type ApprovalSource = 'approved' | 'default-after-timeout' | 'one-click';

export interface ChosenPlan {
  plan: string;
  source: ApprovalSource;
  approvedBy?: string;
  at: string;
}

export interface ApprovalRequest {
  plan: string;
  approvedBy?: string;
}

export interface ImageRecord {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  sizeBytes: number;
}

export interface DeploymentStatus {
  deploymentId: string;
  model: string;
  version: string;
  mode: DeployMode;
  phase: DeploymentPhase;
  stages: StageRecord[];
  /** 0–100 across the whole pipeline. */
  percent: number;
  summary?: ModelSummary;
  plans?: PlanOption[];
  defaultPlan?: string;
  approvalDeadline?: string;
  chosenPlan?: ChosenPlan;
  benchmark?: BenchmarkReport;
  image?: ImageRecord;
  endpoint?: string;
  inferUrl?: string;
  monitorWorkflowId?: string;
  error?: string;
}

export type ServingState = 'running' | 'hibernated' | 'waking' | 'undeployed' | 'unknown';

export interface MonitorInput {
  deploymentId: string;
  model: string;
  version: string;
  settings: MonitorSettings;
  /** Carried across continue-as-new. */
  carried?: MonitorCarry;
}

export interface MonitorCarry {
  hibernations: number;
  collections: number;
}

export interface MonitorStatus {
  deploymentId: string;
  servingState: ServingState;
  collections: number;
  hibernations: number;
  lastSample?: MetricsSnapshot;
  undeployRequested: boolean;
}

export interface MetricsSnapshot {
  at: string;
  servingState: ServingState;
  replicas: number;
  requestCount: number;
  requestsDelta: number;
  errorCount: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  /** Milliseconds since the last request reached the deployment (or since it went live). */
  idleMs: number;
}

/** Workflow ids name what they are about; one run per model version. */
export const workflowIds = {
  deploy: (model: string, version: string) => `deploy:${model}:${version}`,
  monitor: (model: string, version: string) => `monitor:${model}:${version}`,
};

export function deploymentIdFor(model: string, version: string): string {
  return `${model}-${version}`;
}
