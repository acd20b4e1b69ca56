/**
 * This machine, at the cost per hour the user sets (an option only then, except in the deploy stage, which
 * counts an unset cost as $0/h: LocalMachine.costNotSet): one machine, all its cores.
 */
import { type Hardware, isProblem, shapeOn } from '../capacity';
import type { LocalMachine, PlanOption } from '../types';
import { infeasibleOption, optionId, type StrategyContext } from './context';
import { fleetOption } from './fleet';

export function localOption(ctx: StrategyContext, machine: LocalMachine): PlanOption | undefined {
  if (machine.usdPerHour === undefined) return undefined;
  const instanceType = `this-machine-${machine.vcpus}vcpu`;
  const base = {
    id: optionId('local', 'local', 'this-machine', instanceType),
    strategy: 'local' as const,
    provider: 'local',
    region: 'this-machine',
    instanceType,
    target: 'local' as const,
  };
  // The model was measured here: its own speed, whatever the table says.
  const hw: Hardware = {
    vcpus: machine.vcpus,
    memoryGiB: machine.memoryGiB,
    speed: { factor: ctx.calibration.this ?? 1, basis: 'calibrated', key: 'this' },
  };
  const shape = shapeOn(ctx.model, hw, ctx.calibration);
  if (isProblem(shape)) return infeasibleOption(base, shape.kind, shape.reason, machine.usdPerHour * 730);
  return fleetOption(ctx, {
    base,
    shape,
    usdPerInstanceHour: machine.usdPerHour,
    minInstances: 1,
    fixedInstances: 1,
    estimates: machine.costNotSet
      ? ['the cost of this machine (not set: FERRY_LOCAL_COST_PER_HOUR; counted as $0/h)']
      : [],
    what: machine.costNotSet
      ? 'this machine, its cost not set (counted as $0/h)'
      : `this machine at $${machine.usdPerHour}/h (as set)`,
  });
}
