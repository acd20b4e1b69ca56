/**
 * The vocabulary shared by workflows, activities, the client SDK, the CLI and the dashboard.
 * Plain data only: this file is bundled into the workflow sandbox.
 */

import type { AlertState, SignalName } from '../lib/analytics/anomaly';
import type { PredictiveMode } from '../lib/analytics/predictiveFloor';
import type { DeployCostRequest } from '../lib/cost/deployStage';
import type { ConsideredOptions, TargetKind } from '../lib/cost/engine/types';
import type {
  AccuracyBudget,
  BenchmarkReport,
  ModelSummary,
  OptimizationTable,
  PlanOption,
} from '../lib/optimize/types';
import type { TargetSpec } from '../lib/targets/targetSpec';

export type { PredictiveMode } from '../lib/analytics/predictiveFloor';
export type { DeployCostRequest } from '../lib/cost/deployStage';
export type { ConsideredOption, ConsideredOptions, TargetKind } from '../lib/cost/engine/types';
// The optimize stage's types live with the engine (lib/ never imports from workflows/); here for every caller.
export type {
  AccuracyBudget,
  AgreementFigures,
  BenchmarkReport,
  CandidateMeasurement,
  CandidateState,
  LatencyFigures,
  ModelSummary,
  OptimizationCandidate,
  OptimizationTable,
  PlanOption,
  ServingBatching,
  ServingSessionOptions,
  TechniqueRecommendation,
  TensorSpec,
  ThroughputFigures,
} from '../lib/optimize/types';
export type { TargetSpec } from '../lib/targets/targetSpec';

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
  /**
   * Collections per run before continuing as new (default 200: a run's history stays well under the size
   * at which Temporal suggests it). Fewer keeps each history shorter to read in the Web UI.
   */
  collectionsPerRun?: number;
  /**
   * Predictive scaling: `on` keeps a replica floor ahead of the forecast rise (waking from zero before
   * it), `forecast-only` records the forecast and the floor it would set, `off` (the default) neither.
   */
  predictive?: PredictiveMode;
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
  /** The project (tenant) the deployment belongs to and whether inference needs a key; absent: `default`, keyed. */
  access?: { project: string; public: boolean };
  /**
   * Where it runs. Absent: where the cost engine's choice deploys (runs started before the deploy stage
   * planned: the local gateway). Given: the plan is made among this target's options only.
   */
  target?: DeploymentTargetChoice;
  /** The workload profile and constraints the deploy stage plans with (`ferry deploy --traffic ... --slo-p95 ...`). */
  cost?: DeployCostRequest;
}

/** Where a deployment runs: the local gateway (the default) or a namespace of a Kubernetes cluster. */
export interface DeploymentTargetChoice {
  kind: 'local' | 'kubernetes';
  /** Kubernetes only; default FERRY_KUBERNETES_NAMESPACE, else `default`. */
  namespace?: string;
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

export interface OptimizeSettings {
  /** Technique ids to try (default: every registered one). */
  techniques?: string[];
  budget?: Partial<AccuracyBudget>;
  target?: Partial<TargetSpec>;
  /** Milliseconds of timed runs per candidate and batch size (default 600). */
  measureMs?: number;
}

export type ApprovalSource = 'approved' | 'default-after-timeout' | 'one-click';

export interface ChosenPlan {
  plan: string;
  /** The deployment option approved with it (absent: the plan's cheapest deployable option is taken). */
  option?: string;
  source: ApprovalSource;
  approvedBy?: string;
  at: string;
}

export interface ApprovalRequest {
  plan: string;
  /** A deployment option of the plan's considered-options table (`ferry status` lists them); absent: its choice. */
  option?: string;
  approvedBy?: string;
}

/** The deploy stage's decision: which option of which plan's table it deploys, and how it was chosen. */
export interface DeploymentDecision {
  plan: string;
  option: string;
  target: TargetKind;
  source: ApprovalSource;
  approvedBy?: string;
  monthlyCostUsd: number;
  p95Ms: number | null;
  at: string;
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
  /** Per optimization plan that can be approved, the cost engine's considered options (the deploy stage plans before it deploys). */
  deploymentOptions?: Record<string, ConsideredOptions>;
  /** The option the deploy stage took (absent in runs started before it planned). */
  deploymentDecision?: DeploymentDecision;
  benchmark?: BenchmarkReport;
  image?: ImageRecord;
  endpoint?: string;
  inferUrl?: string;
  monitorWorkflowId?: string;
  /** Set for a canary release: the deployment and revision this version serves as. */
  canary?: CanaryStatus;
  error?: string;
}

/** `missing`: the target no longer has the deployment, removed behind Ferry's back (the monitor then ends). */
export type ServingState = 'running' | 'hibernated' | 'waking' | 'undeployed' | 'missing' | 'unknown';

export interface MonitorInput {
  deploymentId: string;
  /** Where the deployment runs; absent: the local gateway. */
  target?: DeploymentTargetChoice;
  model: string;
  version: string;
  settings: MonitorSettings;
  /** Carried across continue-as-new. */
  carried?: MonitorCarry;
}

export interface MonitorCarry {
  hibernations: number;
  collections: number;
  /** The last sample (the next interval's cost starts from it) and the anomaly alerting state. */
  lastSample?: MetricsSnapshot;
  alerts?: Partial<Record<SignalName, AlertState>>;
}

/** The monitor's live cost figures (lib/analytics/costAccounting.ts), over the last 24 hours. */
export interface MonitorCost {
  per1kUsd: number | null;
  perDayUsd: number;
  projectedMonthUsd: number;
  idleUsd: number;
  allocatedUsd: number;
  replicaSeconds: number;
  requests: number;
  coldStarts: number;
  coldStartMeanMs: number | null;
  /** Where the price comes from. */
  priceSource: string;
  /** The last interval's cost per 1k (null without requests). */
  lastIntervalPer1kUsd: number | null;
  since: string;
}

export interface MonitorStatus {
  deploymentId: string;
  servingState: ServingState;
  collections: number;
  hibernations: number;
  lastSample?: MetricsSnapshot;
  undeployRequested: boolean;
  /** Set when the deployment was found gone from its target: when, and what the user can do. */
  missing?: { since: string; note: string };
  cost?: MonitorCost;
  /** Anomalies open now, by signal. */
  anomalies?: Array<{ signal: SignalName; since: string; peakScore: number }>;
  /** The last predictive decision (with `predictive` on or forecast-only). */
  predictive?: PredictiveOutcome;
}

/** What the predictive floor decided at a collection, and whether it was set on the target. */
export interface PredictiveOutcome {
  at: string;
  mode: PredictiveMode;
  /** The floor decided (replicas); 0 or the configured minimum when no rise is forecast. */
  floor: number;
  /** True when the floor was set on the target (mode `on`, and a target that takes a floor). */
  applied: boolean;
  /** True when the floor woke the hibernated deployment. */
  woke: boolean;
  forecastPeakPerMinute: number;
  expectedRequests: number;
  leadMinutes: number;
  reason: string;
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
  /** The replicas running at this sample, for the cost accounting (the seconds each was held). */
  replicaSet?: Array<{ key: string; revision: string; startedAt: string }>;
  /** Per replica (by key), its cumulative request seconds (the latency histogram's sum) and errors. */
  replicaCounters?: Record<string, { busySeconds: number; errors: number }>;
  /** The gateway's cold-start count over the deployment's life, and how long the last wake took. */
  coldStarts?: number;
  lastWakeMs?: number | null;
  /** The limits each replica runs with. */
  resources?: { cpus: number; memoryMb: number };
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
