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
  /** How the optimize stage searches; every field has a default (see lib/optimize/engine.ts). */
  optimize?: OptimizeSettings;
  /**
   * Canary release: the deploy stage adds this version as a revision of a live deployment instead of
   * creating its own (absent in runs started before canaries existed: the usual deployment).
   */
  canary?: CanaryRequest;
}

export interface CanaryRequest {
  /** The live deployment (gateway id) to add the revision to; the SDK resolves it before starting. */
  of: string;
  /** Share of that deployment's traffic split (0–100); its other revisions keep the rest, scaled proportionally. */
  percent: number;
}

/** Where a canary version serves: a revision of another deployment, with a share of its traffic. */
export interface CanaryStatus {
  baseDeploymentId: string;
  /** Its revision name (`x-ferry-revision` in responses); see canaryRevisionName. */
  revision: string;
  /** Its share, as applied (a retry that found the revision there already reports the split as it found it). */
  percent: number;
  /** The whole split after the deploy stage, revision → percent. */
  split: Record<string, number>;
  /** The base deployment's monitor, which watches every revision of it (no second monitor is started). */
  baseMonitorWorkflowId?: string;
}

/** What the optimized model will run on. */
export interface TargetSpec {
  kind: 'cpu' | 'gpu';
  /** True when the image runs on the machine that optimizes it (allows hardware-specific passes). */
  sameMachine: boolean;
  /** Cores one replica may use. */
  threads: number;
}

/**
 * How far a candidate's outputs may drift from the original's on the same inputs before it is rejected.
 * Defaults: cosine ≥ 0.99 and top-1 ≥ 0.99 (see lib/optimize/budget.ts for why).
 */
export interface AccuracyBudget {
  /** Lowest cosine similarity allowed between a candidate's and the original's outputs (per output, the worst counts). */
  minCosine: number;
  /** Lowest fraction of rows whose arg-max class agrees, for outputs that look like class scores. */
  minTop1: number;
  /** Largest absolute difference allowed; unset = not budgeted (it depends on the output's scale). */
  maxAbsError?: number;
}

export interface OptimizeSettings {
  /** Technique ids to try (default: every registered one). */
  techniques?: string[];
  budget?: Partial<AccuracyBudget>;
  target?: Partial<TargetSpec>;
  /** Milliseconds of timed runs per candidate and batch size (default 600). */
  measureMs?: number;
}

/** Session options that travel into the image's ferry-models.json (onnxruntime SessionOptions fields). */
export interface ServingSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
}

/**
 * Dynamic batching that travels into the image's ferry-models.json (the server's `batching` entry). The
 * optimize stage sets it only for a model measured to treat rows independently and to gain from batching.
 */
export interface ServingBatching {
  maxBatchSize: number;
  maxQueueDelayMs: number;
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
  /** The techniques applied in order ([] for the original). */
  techniques?: string[];
  /** The measured trade-off row of this candidate. */
  row?: CandidateMeasurement;
  /** Within the accuracy budget: only such plans can be approved. */
  withinBudget?: boolean;
  /** Why the budget rejects it. */
  rejection?: string;
}

/** One row of the trade-off table: a candidate measured against the original on the same inputs. */
export interface CandidateMeasurement {
  sizeBytes: number;
  gzipBytes: number;
  /** Session creation time (file read, graph optimization, kernel setup). */
  loadMs: number;
  batch1: ThroughputFigures;
  /** At a larger batch, when the model's batch dim is dynamic. */
  largeBatch?: ThroughputFigures;
  /** Peak resident memory of the process that loaded and ran this candidate alone. */
  peakRssBytes: number;
  /** Peak RSS minus the RSS just before the session was created: what the model itself costs. */
  modelRssBytes: number;
  agreement: AgreementFigures;
  /** Cores the session uses (threads in its session options, capped by the target). */
  cores: number;
  /** The score: estimated USD per million batch-1 inferences (lower is better); see lib/optimize/score.ts. */
  costPerMillionUsd: number;
  /** Ratios against the original measured in the same run (>1 = better for size/speed). */
  vsOriginal: {
    sizeRatio: number;
    gzipRatio: number;
    speedupP50: number;
    speedupLargeBatch?: number;
    memoryRatio: number;
  };
}

export interface ThroughputFigures extends LatencyFigures {
  batchSize: number;
  iterations: number;
  /** Items per second at this batch size (batch / mean latency). */
  throughputPerSec: number;
}

export interface AgreementFigures {
  maxAbsError: number;
  /** Worst cosine similarity over the outputs. */
  cosine: number;
  /** Fraction of rows whose arg-max agrees, over outputs that look like class scores; null when none do. */
  top1: number | null;
  /** Input rows compared. */
  samples: number;
}

export type CandidateState = 'measured' | 'not-applicable' | 'failed';

export interface OptimizationCandidate {
  id: string;
  title: string;
  techniques: string[];
  state: CandidateState;
  /** Measured: within the accuracy budget (and so offered as a plan that can be approved). */
  withinBudget: boolean;
  /** Measured but outside the budget: why. */
  rejection?: string;
  /** Not applicable / failed: why (shown as "not applicable: <reason>"). */
  reason?: string;
  notes: string[];
  row?: CandidateMeasurement;
  /** The candidate's model in the object store (measured candidates only). */
  artifact?: { objectKey: string; sha256: string };
  sessionOptions?: ServingSessionOptions;
  /** Set when serving this candidate with dynamic batching was measured safe and worthwhile. */
  batching?: ServingBatching;
}

export interface TechniqueRecommendation {
  technique: string;
  title: string;
  /** 1 = try first. */
  rank: number;
  applicable: boolean;
  /** Why it applies (what in the analysis makes it worthwhile) or why not. */
  reasons: string[];
  expectedEffect: string;
}

/** The optimize stage's result: analysis, ranked recommendations and the measured table. Plain data. */
export interface OptimizationTable {
  target: TargetSpec;
  budget: AccuracyBudget;
  analysis: {
    parameterCount: number;
    weightBytes: number;
    macsEstimate: number;
    opMix: Record<string, number>;
    dynamicDims: string[];
    batchDynamic: boolean;
  };
  recommendations: TechniqueRecommendation[];
  candidates: OptimizationCandidate[];
  /** The one-click choice: lowest score within the budget. */
  best: string;
  /** How rows were measured, in words (inputs, iterations, isolation). */
  method: string;
  /** What the score means, in words. */
  score: string;
  elapsedMs: number;
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
  /** The measured trade-off table (optimize stage), shown by the CLI, the dashboard and review mode. */
  optimization?: OptimizationTable;
  approvalDeadline?: string;
  chosenPlan?: ChosenPlan;
  benchmark?: BenchmarkReport;
  image?: ImageRecord;
  endpoint?: string;
  inferUrl?: string;
  monitorWorkflowId?: string;
  /** Set for a canary release: the deployment and revision this version serves as. */
  canary?: CanaryStatus;
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
  /** Cumulative latency histogram across replicas at this sample; the next collection subtracts it so
   * latency figures describe the interval, not the replicas' lifetime. */
  latencyBuckets: Array<{ le: number; count: number }>;
}

/** Workflow ids name what they are about; one run per model version. */
export const workflowIds = {
  deploy: (model: string, version: string) => `deploy:${model}:${version}`,
  monitor: (model: string, version: string) => `monitor:${model}:${version}`,
};

export function deploymentIdFor(model: string, version: string): string {
  return `${model}-${version}`;
}

/**
 * The revision name a canary version gets: the version itself (the SDK's model versions follow the
 * gateway's revision-name pattern), else `v-<version>` (e.g. for a version named "default", the name
 * of a deployment's first revision when it was deployed as a single image).
 */
export function canaryRevisionName(version: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(version) && version !== 'default') return version;
  return `v-${version.replace(/[^A-Za-z0-9._-]+/g, '-')}`.slice(0, 63);
}
