/**
 * The price of the resource a deployment's replicas run on: the catalog's on-demand (or spot) price of
 * its instance when the deployment names one the catalog has, else the local machine at its configured
 * cost per hour.
 */
import type { PriceCatalog, Provider } from '../cost/catalog/types';
import type { ResourcePrice } from './costAccounting';

export interface PlacementRef {
  provider: Provider;
  region: string;
  instanceType: string;
  /** A spot zone, priced at its spot price when the catalog has one. */
  spotZone?: string;
}

export interface LocalMachine {
  usdPerHour: number;
  vcpus: number;
  memoryGiB: number;
}

export function resourcePrice(
  placement: PlacementRef | undefined,
  catalog: PriceCatalog | undefined,
  local: LocalMachine,
): ResourcePrice {
  if (placement && catalog) {
    const instance = catalog.instances.find(
      (i) =>
        i.provider === placement.provider && i.region === placement.region && i.instanceType === placement.instanceType,
    );
    if (instance) {
      const spot = placement.spotZone ? instance.spotUsdPerHour?.[placement.spotZone] : undefined;
      return {
        usdPerHour: spot ?? instance.onDemandUsdPerHour,
        vcpus: instance.vcpus,
        memoryGiB: instance.memoryGiB,
        source:
          `catalog ${catalog.snapshotDate} ${instance.provider} ${instance.region} ${instance.instanceType}` +
          (spot !== undefined ? ` spot ${placement.spotZone}` : ' on-demand'),
      };
    }
  }
  return {
    usdPerHour: local.usdPerHour,
    vcpus: local.vcpus,
    memoryGiB: local.memoryGiB,
    source: 'local machine (FERRY_LOCAL_COST_PER_HOUR)',
  };
}
