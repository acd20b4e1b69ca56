/**
 * The cost engine's inputs and outputs. Plain data: a plan travels through Temporal payloads, into
 * Postgres and to the dashboard, and `ferry plan --json` prints it.
 */
import type { Architecture, PriceCatalog } from '../catalog/types';
import type { Calibration } from './cpuSpeed';
import type { ServiceTime } from './queueing';
import type { WorkloadProfile } from './workloadProfile';

/** What the optimize stage measured of the model that will be served (lib/cost/engine/measurements.ts). */
export interface ModelMeasurements {
  /** Where they come from, in words (e.g. "optimize stage, candidate int8-dynamic"). */
  source: string;
  /** Batch-1 latency with `threads` intra-op threads on the measuring machine. */
  batch1: ServiceTime;
  threads: number;
  /** Throughput at a larger batch when measured (dynamic batching serves more rows per second). */
  largeBatch?: { batchSize: number; throughputPerSec: number };
  /** Peak RSS of a process serving the model alone: what one replica needs. */
  peakRssBytes: number;
  modelSizeBytes: number;
  /** Session creation time. */
  loadMs: number;
  /** A replica's start until its first answer; estimated from loadMs when not measured (measurements.ts). */
  coldStartMs: number;
  coldStartMeasured: boolean;
  /** Bytes of one request body (the inputs as v2 JSON), for serverless request limits. */
  requestBytes: number;
}

export type StrategyKind = 'local' | 'kubernetes' | 'vm-on-demand' | 'vm-spot' | 'serverless' | 'edge';

/** The Ferry targets an option deploys through; undefined for ones Ferry has no target for. */
export type TargetKind = 'local' | 'kubernetes' | 'ec2';

export interface PlanConstraints {
  /** The p95 latency goal, milliseconds, as the users see it (network round trip included with usersIn). */
  sloP95Ms: number;
  budgetUsdPerMonth?: number;
  providers?: string[];
  /** Region names or globs (`us-*`). */
  regions?: string[];
  arch?: Architecture;
  gpu?: boolean;
  maxColdStartMs?: number;
  noSpot?: boolean;
  /** The users' region: its round trip to each option's region counts against the SLO. */
  usersIn?: string;
  /** Only options deployed through these targets (an explicit `--target kubernetes` constrains the plan to it). */
  targets?: TargetKind[];
}

export interface LocalMachine {
  vcpus: number;
  memoryGiB: number;
  arch: Architecture;
  /** What this machine costs per hour, as the user sets it; local is an option only when set. */
  usdPerHour?: number;
  /**
   * The deploy stage: no cost was set, and this machine is counted at $0/h (it is paid for already) so that
   * a plain deploy still serves here; the option says so among its estimates.
   */
  costNotSet?: boolean;
}

export interface KubernetesNode {
  /** $/h of one node of the user's cluster (`--node-cost`); without it nodes are priced from the catalog. */
  usdPerHour: number;
  vcpus: number;
  memoryGiB: number;
  arch: Architecture;
}

export interface PlanInput {
  model: ModelMeasurements;
  profile: WorkloadProfile;
  constraints: PlanConstraints;
  catalog: PriceCatalog;
  /** This machine (the `local` strategy). */
  local?: LocalMachine;
  /**
   * The user's own cluster (the kubeconfig Ferry's kubernetes target uses) and how its node is priced:
   * `--node-cost`, or a catalog instance named in `priceBasis`. Managed clusters come from the catalog.
   */
  kubernetesNode?: { node: KubernetesNode; priceBasis: string };
  /** A named arm64 device (lib/cost/engine/strategies/edge.ts knows some). */
  edgeDevice?: string;
  calibration?: Calibration;
  /** Targets configured on this machine; options of other targets show "not configured". */
  deployableTargets: TargetKind[];
  /** Choose among deployable options only (the deploy stage does). */
  deployableOnly?: boolean;
  /** Every option sized, not only the table's selection (`ferry plan --all`, the bench). */
  allOptions?: boolean;
}

export type InfeasibleKind =
  | 'slo-unmet'
  | 'over-budget'
  | 'no-memory'
  | 'needs-gpu'
  | 'serverless-limit'
  | 'cold-start'
  | 'no-capacity';

export type Risk = 'low' | 'medium' | 'high';

/** Instances per hour of the profile's day (or week): what the strategy runs and bills. */
export interface FleetSchedule {
  /** Servers (one inference at a time) one instance runs. */
  serversPerInstance: number;
  /** Per hour of the profile: on-demand instances, and spot ones where the strategy uses spot. */
  onDemand: number[];
  spot?: number[];
  /** Spot zones the spot instances are spread over (cheapest first). */
  zones?: string[];
}

export interface PlanOption {
  /** `<strategy>:<provider>:<region>:<instance type>`, stable across runs of the same catalog. */
  id: string;
  strategy: StrategyKind;
  provider: string;
  region: string;
  instanceType: string;
  monthlyCostUsd: number;
  /** Expected p95, ms, cold starts, interruptions and the users' round trip included; null when it cannot serve the load. */
  p95Ms: number | null;
  /** Expected share of requests within the SLO. */
  withinSloShare: number;
  feasible: boolean;
  /** Why not, when infeasible. */
  reason?: string;
  reasonKind?: InfeasibleKind;
  risk: Risk;
  /** How it was sized and priced, in words. */
  why: string;
  /** Replicas over the day: fewest, most, and the instance-hours mean. */
  instances: { min: number; max: number; mean: number };
  coldStartMs?: number;
  /** Share of requests expected to meet a cold start. */
  coldStartShare?: number;
  /** Round trip from the users' region, and whether the table's figure is published or estimated. */
  networkRttMs?: number;
  target?: TargetKind;
  deployable: boolean;
  /** "not configured" and such, for options that cannot be deployed from here. */
  deployNote?: string;
  /** The figures the option rests on are estimates (a speed factor from the table, a price marked estimate). */
  estimates: string[];
  schedule?: FleetSchedule;
  /** One server's service time on this option's hardware, as the capacity model predicts it. */
  service?: ServiceTime;
  /** Serverless: how each instance is sized. */
  serverless?: { service: string; memoryGiB: number; vcpus: number; concurrency: number; keepWarmMs: number };
}

export interface DeploymentPlan {
  /** The chosen option's id; undefined when none is feasible (`error` says why). */
  chosen?: string;
  /** Feasible options first, cheapest first; then the infeasible ones. */
  options: PlanOption[];
  error?: string;
  /** The cheapest option that meets the SLO, whatever its cost (named when the budget rules everything out). */
  cheapestMeetingSlo?: string;
  /** Options sized and priced; the table keeps the cheapest feasible of each strategy, provider and region. */
  considered: number;
  profile: { kind: string; description: string; peakRps: number; meanRps: number; requestsPerMonth: number };
  constraints: PlanConstraints;
  catalog: { snapshotDate: string; contentHash: string };
  model: ModelMeasurements;
  /** Assumptions the figures rest on, in words. */
  assumptions: string[];
}

/** An option's fields the deploy stage keeps (status Query, Postgres, dashboard): no schedule or service times. */
export type ConsideredOption = Pick<
  PlanOption,
  | 'id'
  | 'strategy'
  | 'provider'
  | 'region'
  | 'instanceType'
  | 'monthlyCostUsd'
  | 'p95Ms'
  | 'withinSloShare'
  | 'feasible'
  | 'reason'
  | 'reasonKind'
  | 'risk'
  | 'why'
  | 'instances'
  | 'target'
  | 'deployable'
  | 'deployNote'
  | 'estimates'
>;

/** A plan as the deploy stage shows and stores it: the considered-options table, the choice and why. */
export interface ConsideredOptions extends Omit<DeploymentPlan, 'options' | 'model'> {
  options: ConsideredOption[];
  model: Pick<ModelMeasurements, 'source'>;
}
