/**
 * The deploy stage's planning, before anything is chosen: each optimization plan that could be approved
 * is planned with its own measured row (a faster candidate may fit a cheaper option), among the targets
 * configured here only, and cut down to its considered-options table for the run's status.
 *
 *   const plans = planEveryCandidate({ candidates, inputs, request, catalog, deployable, local });
 */
import type { CandidateMeasurement, TensorSpec } from '../optimize/types';
import type { PriceCatalog } from './catalog/types';
import { consideredOptions } from './engine/considered';
import { DEFAULT_SLO_P95_MS } from './engine/constraints';
import { measurementsFromCandidate } from './engine/measurements';
import { planDeployment } from './engine/plan';
import type {
  ConsideredOptions,
  DeploymentPlan,
  LocalMachine,
  PlanConstraints,
  PlanInput,
  TargetKind,
} from './engine/types';
import { parseProfile, type WorkloadProfile } from './engine/workloadProfile';

/** What `ferry deploy` passes for planning: its `--traffic` profile (parsed by the caller) and constraints. */
export interface DeployCostRequest {
  /** Absent: DEFAULT_DEPLOY_TRAFFIC. */
  profile?: WorkloadProfile;
  /** Absent fields take the engine's defaults (the SLO: DEFAULT_SLO_P95_MS). */
  constraints?: Partial<PlanConstraints>;
}

/** The traffic a deploy that gives none is planned for (it says so in the plan's profile). */
export const DEFAULT_DEPLOY_TRAFFIC = '1rps';

export interface CandidateToPlan {
  id: string;
  row: CandidateMeasurement;
}

export interface DeployStagePlanInput {
  candidates: CandidateToPlan[];
  /** The model's inputs (request sizes for serverless limits). */
  inputs?: TensorSpec[];
  request?: DeployCostRequest;
  /** A target the user named (`ferry deploy --target kubernetes`): only its options. */
  requestedTarget?: TargetKind;
  catalog: PriceCatalog;
  deployable: TargetKind[];
  /** Targets configured here that the pipeline does not deploy to (their options say so, not "not configured"). */
  configuredOnly?: TargetKind[];
  local: LocalMachine;
  kubernetesNode?: PlanInput['kubernetesNode'];
}

export interface DeployStagePlan {
  /** Per candidate id: the whole plan (Postgres keeps it) and its table (the run's status). */
  full: DeploymentPlan;
  table: ConsideredOptions;
}

export function deployStageConstraints(request: DeployCostRequest | undefined, target?: TargetKind): PlanConstraints {
  return {
    ...request?.constraints,
    sloP95Ms: request?.constraints?.sloP95Ms ?? DEFAULT_SLO_P95_MS,
    ...(target ? { targets: [target] } : {}),
  };
}

export function planEveryCandidate(input: DeployStagePlanInput): Record<string, DeployStagePlan> {
  const profile = input.request?.profile ?? {
    ...parseProfile(DEFAULT_DEPLOY_TRAFFIC),
    description: `${DEFAULT_DEPLOY_TRAFFIC} (no --traffic given)`,
  };
  const constraints = deployStageConstraints(input.request, input.requestedTarget);
  const out: Record<string, DeployStagePlan> = {};
  for (const c of input.candidates) {
    const full = planDeployment({
      model: measurementsFromCandidate(c.row, { source: `optimize stage, candidate ${c.id}`, inputs: input.inputs }),
      profile,
      constraints,
      catalog: input.catalog,
      local: input.local,
      ...(input.kubernetesNode ? { kubernetesNode: input.kubernetesNode } : {}),
      deployableTargets: input.deployable,
      deployableOnly: true,
    });
    for (const o of full.options)
      if (o.target && !o.deployable && input.configuredOnly?.includes(o.target))
        o.deployNote = `configured, but the pipeline does not deploy to ${o.target} yet`;
    out[c.id] = { full, table: consideredOptions(full) };
  }
  return out;
}
