/** A VM on demand: a fleet of one instance type in one region, at its on-demand price, never below one. */
import type { InstancePrice } from '../../catalog/types';
import { hardwareOf, isProblem, shapeOn } from '../capacity';
import type { PlanOption } from '../types';
import { infeasibleOption, optionId, type StrategyContext } from './context';
import { fleetOption } from './fleet';

/** The Ferry target a provider's VMs deploy through (only EC2 has one). */
export function vmTarget(inst: InstancePrice): 'ec2' | undefined {
  return inst.provider === 'aws' ? 'ec2' : undefined;
}

export function instanceEstimates(inst: InstancePrice, speedBasis: string, speedKey: string): string[] {
  const out: string[] = [];
  if (speedBasis !== 'calibrated') out.push(`CPU speed of ${speedKey} (${speedBasis})`);
  if (inst.source.estimate) out.push(`price of ${inst.instanceType} (${inst.source.note ?? 'estimate'})`);
  return out;
}

/** What every option on one VM instance type names: its id, strategy, where, and its target. */
export function vmOptionBase<S extends 'vm-on-demand' | 'vm-spot'>(strategy: S, inst: InstancePrice) {
  return {
    id: optionId(strategy, inst.provider, inst.region, inst.instanceType),
    strategy,
    provider: inst.provider,
    region: inst.region,
    instanceType: inst.instanceType,
    target: vmTarget(inst),
  };
}

export function onDemandOption(ctx: StrategyContext, inst: InstancePrice): PlanOption {
  const base = vmOptionBase('vm-on-demand', inst);
  const hw = hardwareOf(inst, ctx.calibration, ctx.constraints.gpu === true);
  const shape = shapeOn(ctx.model, hw, ctx.calibration);
  if (isProblem(shape)) return infeasibleOption(base, shape.kind, shape.reason, inst.onDemandUsdPerHour * 730);
  return fleetOption(ctx, {
    base,
    shape,
    usdPerInstanceHour: inst.onDemandUsdPerHour,
    minInstances: 1,
    estimates: instanceEstimates(inst, hw.speed.basis, hw.speed.key),
    what: `on demand at $${inst.onDemandUsdPerHour}/h, scaled hourly`,
  });
}
