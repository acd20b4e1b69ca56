/**
 * The CreateFleet request of one revision's instances: an instant fleet (one synchronous launch, nothing
 * for EC2 to maintain afterwards — Ferry itself replaces lost capacity) over the launch template, with
 * the pools as overrides. Spot uses the price-capacity-optimized allocation (the cheapest pools among
 * those with the most spare capacity, so fewer interruptions than lowest-price); the on-demand base is
 * launched in the same request. Spot that finds no capacity falls back to on demand: an instant fleet
 * reports what it could not launch, and `onDemandFallback` asks for that shortfall on demand.
 */
import { createHash } from 'node:crypto';
import type {
  CreateFleetCommandInput,
  CreateFleetInstance,
  FleetLaunchTemplateOverridesRequest,
  Tag,
} from '@aws-sdk/client-ec2';
import type { CapacityPool } from './placement';
import { tagSpecifications } from './tags';

export interface FleetRequest {
  launchTemplateId: string;
  launchTemplateVersion: string;
  pools: CapacityPool[];
  /** Zone → subnet, for the default VPC or a configured one; a pool without one is placed by zone. */
  subnets: Record<string, string>;
  spot: number;
  onDemand: number;
  tags: Tag[];
  /**
   * Makes the request idempotent on EC2's side: the same token within a few hours returns the fleet it
   * created, so a retried activity that did not see its instances yet does not launch again.
   */
  clientToken: string;
}

export function fleetOverrides(
  pools: CapacityPool[],
  subnets: Record<string, string>,
): FleetLaunchTemplateOverridesRequest[] {
  return pools.map((p, i) => ({
    InstanceType: p.instanceType as FleetLaunchTemplateOverridesRequest['InstanceType'],
    ...(subnets[p.zone] ? { SubnetId: subnets[p.zone] } : { AvailabilityZone: p.zone }),
    // Used by the on-demand `prioritized` strategy: the catalog's order, cheapest first.
    Priority: i,
  }));
}

export function buildFleetRequest(r: FleetRequest): CreateFleetCommandInput {
  const total = r.spot + r.onDemand;
  if (total < 1) throw new Error('a fleet request needs at least one instance');
  return {
    Type: 'instant',
    ClientToken: r.clientToken,
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: r.launchTemplateId, Version: r.launchTemplateVersion },
        Overrides: fleetOverrides(r.pools, r.subnets),
      },
    ],
    TargetCapacitySpecification: {
      TotalTargetCapacity: total,
      OnDemandTargetCapacity: r.onDemand,
      SpotTargetCapacity: r.spot,
      DefaultTargetCapacityType: r.spot > 0 ? 'spot' : 'on-demand',
    },
    SpotOptions: { AllocationStrategy: 'price-capacity-optimized', InstanceInterruptionBehavior: 'terminate' },
    // Priority order is the catalog's price order; on-demand prices in the catalog are list prices.
    OnDemandOptions: { AllocationStrategy: 'prioritized' },
    TagSpecifications: tagSpecifications(['instance', 'volume', 'fleet'], r.tags),
  };
}

/** What an instant fleet launched, by lifecycle. */
export function launchedCounts(instances: CreateFleetInstance[] | undefined): {
  spot: number;
  onDemand: number;
  ids: string[];
} {
  let spot = 0;
  let onDemand = 0;
  const ids: string[] = [];
  for (const group of instances ?? []) {
    const n = group.InstanceIds?.length ?? 0;
    ids.push(...(group.InstanceIds ?? []));
    if (group.Lifecycle === 'spot') spot += n;
    else onDemand += n;
  }
  return { spot, onDemand, ids };
}

/**
 * The on-demand request for spot capacity an instant fleet could not launch (none when all came up):
 * the same pools and tags, on demand only, with its own token.
 */
export function onDemandFallback(
  r: FleetRequest,
  launched: { spot: number; onDemand: number },
): FleetRequest | undefined {
  const missing = r.spot - launched.spot + (r.onDemand - launched.onDemand);
  if (missing <= 0) return undefined;
  return { ...r, spot: 0, onDemand: missing, clientToken: token(`${r.clientToken}:on-demand-fallback:${missing}`) };
}

/** A ClientToken (EC2 takes up to 64 ASCII characters) from what makes a request the same request. */
export function token(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 64);
}
