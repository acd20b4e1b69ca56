/**
 * The engine's off-catalog inputs as this machine offers them: the machine itself (the `local` strategy)
 * and, when a kubeconfig is configured, the cluster's node, priced by the user (`--node-cost`) or from
 * the catalog. `ferry plan` and the deploy stage build them here alike.
 */
import * as os from 'node:os';
import type { PriceCatalog } from './catalog/types';
import { estimatedClusterNode } from './engine/strategies/kubernetes';
import type { LocalMachine, PlanInput, TargetKind } from './engine/types';

/**
 * This machine at `usdPerHour`. Unset: no local option (`ferry plan`), unless `countUnsetAsZero` (the deploy
 * stage, where a plain deploy serves here): then $0/h, marked as not set.
 */
export function thisMachine(usdPerHour: number | undefined, countUnsetAsZero = false): LocalMachine {
  const machine: LocalMachine = {
    vcpus: os.availableParallelism(),
    memoryGiB: Math.floor(os.totalmem() / 2 ** 30),
    arch: process.arch === 'arm64' ? 'arm64' : 'x86_64',
  };
  if (usdPerHour !== undefined) return { ...machine, usdPerHour };
  return countUnsetAsZero ? { ...machine, usdPerHour: 0, costNotSet: true } : machine;
}

export interface NodeCostFlags {
  usdPerHour?: number;
  vcpus?: number;
  memoryGiB?: number;
}

/** The configured cluster's node: at the user's price, else one priced from the catalog; none without a cluster. */
export function clusterNodeHere(
  catalog: PriceCatalog,
  deployable: TargetKind[],
  nodeCost: NodeCostFlags = {},
): PlanInput['kubernetesNode'] {
  if (nodeCost.usdPerHour !== undefined)
    return {
      node: {
        usdPerHour: nodeCost.usdPerHour,
        vcpus: nodeCost.vcpus ?? 2,
        memoryGiB: nodeCost.memoryGiB ?? 8,
        arch: 'x86_64',
      },
      priceBasis: '--node-cost',
    };
  return deployable.includes('kubernetes') ? estimatedClusterNode(catalog) : undefined;
}
