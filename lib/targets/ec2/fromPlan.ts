/**
 * The cost engine's chosen option (lib/cost/engine) as the ec2 target runs it: the pools of the option's
 * instance type in the zones the engine spread spot over (cheapest first), its on-demand base, and how
 * many instances to hold. The target holds one count: the most the option's schedule runs in any hour
 * (it does not follow the schedule hour by hour; that would be scheduled scaling, which it has not).
 */
import type { PriceCatalog } from '../../cost/catalog/types';
import type { PlanOption } from '../../cost/engine/types';
import { cheapestPools, type Ec2Placement } from './placement';

export interface Ec2Choice {
  placement: Ec2Placement;
  /** Instances (replicas) per revision. */
  replicas: number;
}

export function ec2ChoiceFromOption(option: PlanOption, catalog: PriceCatalog): Ec2Choice {
  if (option.target !== 'ec2' || (option.strategy !== 'vm-spot' && option.strategy !== 'vm-on-demand'))
    throw new Error(`option ${option.id} is not deployed through the ec2 target`);
  const replicas = Math.max(1, option.instances.max);
  const pools = cheapestPools(catalog.instances, {
    region: option.region,
    instanceTypes: [option.instanceType],
    maxPools: 16,
  });
  if (pools.length === 0)
    throw new Error(
      `the catalog names no zone of ${option.instanceType} in ${option.region} (its spot prices name the zones)`,
    );
  if (option.strategy === 'vm-on-demand')
    return { placement: { region: option.region, pools, onDemandBase: replicas }, replicas };
  const zones = option.schedule?.zones ?? [];
  // The zones the engine spread spot over, in its order; all the type's zones when it named none.
  const chosen = zones.flatMap((z) => pools.filter((p) => p.zone === z));
  const onDemandBase = Math.min(replicas, Math.max(0, ...(option.schedule?.onDemand ?? [replicas])));
  return { placement: { region: option.region, pools: chosen.length > 0 ? chosen : pools, onDemandBase }, replicas };
}
