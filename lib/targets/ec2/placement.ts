/**
 * Where a deployment's instances may go: the pools (instance type × zone) the cost engine chose, cheapest
 * spot price first, and how many replicas run on demand whatever happens (SkyServe's SpotHedge: spot
 * spread over the cheapest zones, overprovisioned, with an on-demand base). Prices come from the price
 * catalog, never from the account: an emulator's spot prices are fake, and a real account's history says
 * nothing about the next hour's interruptions.
 */
import type { Architecture, InstancePrice } from '../../cost/catalog/types';

export interface CapacityPool {
  instanceType: string;
  zone: string;
  /** The catalog's spot price in that zone; absent when the type has no spot market there. */
  spotUsdPerHour?: number;
  onDemandUsdPerHour: number;
  arch: Architecture;
}

export interface Ec2Placement {
  region: string;
  /** Cheapest first; the fleet's overrides, in this order. */
  pools: CapacityPool[];
  /**
   * How many of each revision's replicas (one per instance; the spec says how many) run on demand; the
   * rest are spot, falling back to on demand when spot has no capacity.
   */
  onDemandBase: number;
}

export interface PoolChoice {
  region: string;
  /** Instance types the engine found feasible (each fits the model and meets the SLO). */
  instanceTypes: string[];
  /** At most this many pools, cheapest first (default 6): more pools, fewer correlated interruptions. */
  maxPools?: number;
  /** Zones to leave out (one whose spot capacity was just reclaimed). */
  avoidZones?: string[];
}

/**
 * The cheapest pools of `instanceTypes` in `region`, by the catalog's spot price. The catalog's per-zone
 * spot prices name the zones, so a type without spot prices there gives no pool.
 */
export function cheapestPools(catalog: InstancePrice[], choice: PoolChoice): CapacityPool[] {
  const avoid = new Set(choice.avoidZones ?? []);
  const pools: CapacityPool[] = [];
  for (const row of catalog) {
    if (row.provider !== 'aws' || row.region !== choice.region || !choice.instanceTypes.includes(row.instanceType))
      continue;
    for (const [zone, spot] of Object.entries(row.spotUsdPerHour ?? {})) {
      if (!avoid.has(zone))
        pools.push({
          instanceType: row.instanceType,
          zone,
          spotUsdPerHour: spot,
          onDemandUsdPerHour: row.onDemandUsdPerHour,
          arch: row.arch,
        });
    }
  }
  pools.sort(
    (a, b) =>
      (a.spotUsdPerHour ?? a.onDemandUsdPerHour) - (b.spotUsdPerHour ?? b.onDemandUsdPerHour) ||
      a.zone.localeCompare(b.zone) ||
      a.instanceType.localeCompare(b.instanceType),
  );
  return pools.slice(0, choice.maxPools ?? 6);
}

/**
 * The placement for capacity that replaces an interrupted instance: the same pools without the zones
 * named (the cheapest zone still available comes first); all of them when that would leave none.
 */
export function withoutZones(placement: Ec2Placement, zones: string[]): Ec2Placement {
  const left = placement.pools.filter((p) => !zones.includes(p.zone));
  return { ...placement, pools: left.length > 0 ? left : placement.pools };
}

export function assertPlacement(p: Ec2Placement): void {
  if (p.pools.length === 0) throw new Error('an ec2 placement needs at least one pool (instance type and zone)');
  if (!Number.isInteger(p.onDemandBase) || p.onDemandBase < 0)
    throw new Error(`onDemandBase must be a whole number ≥ 0, got ${p.onDemandBase}`);
  for (const pool of p.pools)
    if (!pool.zone.startsWith(p.region))
      throw new Error(`pool ${pool.instanceType} in ${pool.zone} is not in region ${p.region}`);
  // One launch template (one AMI) per revision: its pools share an architecture.
  const arches = new Set(p.pools.map((pool) => pool.arch));
  if (arches.size > 1)
    throw new Error(`an ec2 placement's pools must share one architecture, got ${[...arches].join(' and ')}`);
}
