/** A plan cut down to its considered-options table (what a workflow's status carries for every plan). */
import type { ConsideredOption, ConsideredOptions, DeploymentPlan, PlanOption } from './types';

const KEPT: Array<keyof ConsideredOption> = [
  'id',
  'strategy',
  'provider',
  'region',
  'instanceType',
  'monthlyCostUsd',
  'p95Ms',
  'withinSloShare',
  'feasible',
  'reason',
  'reasonKind',
  'risk',
  'why',
  'instances',
  'target',
  'deployable',
  'deployNote',
  'estimates',
];

export function consideredOption(o: PlanOption): ConsideredOption {
  const out: Record<string, unknown> = {};
  for (const k of KEPT) if (o[k] !== undefined) out[k] = o[k];
  return out as unknown as ConsideredOption;
}

export function consideredOptions(plan: DeploymentPlan): ConsideredOptions {
  const { options, model, ...rest } = plan;
  return { ...rest, options: options.map(consideredOption), model: { source: model.source } };
}
