/**
 * Stage 4's planning, before anything is deployed: the cost engine prices every optimization plan that
 * could be approved (its own measured row) against the workload profile and constraints given at deploy
 * time, among the targets configured here (lib/cost/deployStage.ts), keeps the whole plans in Postgres and
 * hands the workflow their considered-options tables. `recordDeploymentDecision` marks the option taken.
 */
import { shippedCatalog } from '../../lib/cost/catalog/load';
import { configuredTargets } from '../../lib/cost/configuredTargets';
import { type CandidateToPlan, type DeployCostRequest, planEveryCandidate } from '../../lib/cost/deployStage';
import type { ConsideredOptions, TargetKind } from '../../lib/cost/engine/types';
import { clusterNodeHere, thisMachine } from '../../lib/cost/thisMachine';
import { DeploymentPlanRepository } from '../../lib/db/deploymentPlanRepository';
import { getPool } from '../../lib/db/pool';
import type { ApprovalSource, DeploymentTargetChoice, TensorSpec } from '../../workflows/types';
import { activityDeps } from '../deps';

/** The targets the deploy stage can deploy to (activities/deps.ts's targetFor). */
const PIPELINE_TARGETS: TargetKind[] = ['local', 'kubernetes'];

export interface PlanDeploymentInput {
  deploymentId: string;
  modelVersionId: number;
  candidates: CandidateToPlan[];
  inputs?: TensorSpec[];
  cost?: DeployCostRequest;
  /** The target the user named, if any: only its options are considered. */
  target?: DeploymentTargetChoice;
}

export interface PlanDeploymentResult {
  /** Per optimization plan id. */
  tables: Record<string, ConsideredOptions>;
}

function plans(): DeploymentPlanRepository {
  return new DeploymentPlanRepository(getPool(activityDeps().config.postgres.url));
}

export async function planDeploymentOptions(input: PlanDeploymentInput): Promise<PlanDeploymentResult> {
  const { config } = activityDeps();
  const catalog = shippedCatalog();
  const configured = configuredTargets(config);
  const deployable = configured.filter((t) => PIPELINE_TARGETS.includes(t));
  const planned = planEveryCandidate({
    candidates: input.candidates,
    ...(input.inputs ? { inputs: input.inputs } : {}),
    ...(input.cost ? { request: input.cost } : {}),
    ...(input.target ? { requestedTarget: input.target.kind } : {}),
    catalog,
    deployable,
    configuredOnly: configured.filter((t) => !PIPELINE_TARGETS.includes(t)),
    // A plain deploy serves here: this machine counts at $0/h unless its cost is set.
    local: thisMachine(config.cost.userLocalCostPerHour, true),
    kubernetesNode: clusterNodeHere(catalog, deployable),
  });
  await plans().recordPlans(
    input.deploymentId,
    input.modelVersionId,
    Object.entries(planned).map(([optimizationPlan, p]) => ({ optimizationPlan, plan: p.full })),
  );
  return { tables: Object.fromEntries(Object.entries(planned).map(([id, p]) => [id, p.table])) };
}

export interface DeploymentDecisionInput {
  deploymentId: string;
  plan: string;
  option: string;
  target: TargetKind;
  source: ApprovalSource;
  approvedBy?: string;
}

export async function recordDeploymentDecision(input: DeploymentDecisionInput): Promise<void> {
  const recorded = await plans().recordDecision({
    deploymentId: input.deploymentId,
    optimizationPlan: input.plan,
    option: input.option,
    target: input.target,
    source: input.source,
    approvedBy: input.approvedBy ?? null,
  });
  if (!recorded) throw new Error(`no deployment plan of ${input.deploymentId} for plan ${input.plan} was recorded`);
}
