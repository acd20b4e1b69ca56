/**
 * Kubernetes: replicas as pods on nodes, nodes added and removed by a cluster autoscaler (hourly here).
 * Either the user's own cluster (the kubeconfig Ferry's kubernetes target deploys to), at the node price
 * the user gives (`--node-cost`) or one priced from the catalog, or a managed cluster of a provider priced
 * from the catalog's instances plus the provider's control-plane fee. A node keeps more memory for the
 * kubelet and system pods than a plain VM.
 */
import type { InstancePrice } from '../../catalog/types';
import { type Hardware, hardwareOf, isProblem, shapeOn } from '../capacity';
import { cpuSpeed } from '../cpuSpeed';
import type { KubernetesNode, PlanOption } from '../types';
import { infeasibleOption, optionId, type StrategyContext } from './context';
import { fleetOption } from './fleet';
import { instanceEstimates } from './vm';

/** Kubelet, container runtime and system pods (a node's allocatable memory is its capacity less about this). */
export const NODE_RESERVE_GIB = 1;

/**
 * Managed control planes, $/h per cluster, from the providers' pricing pages (EKS standard support, GKE
 * standard, AKS free tier). Not part of the dated catalog snapshot.
 */
export const CONTROL_PLANE_USD_PER_HOUR: Record<string, number> = { aws: 0.1, gcp: 0.1, azure: 0 };

/** The user's cluster: provider `cluster`, region `kubeconfig`. */
export function clusterOption(ctx: StrategyContext, node: KubernetesNode, priceBasis: string): PlanOption {
  const instanceType = `node-${node.vcpus}vcpu-${node.memoryGiB}gib`;
  const base = {
    id: optionId('kubernetes', 'cluster', 'kubeconfig', instanceType),
    strategy: 'kubernetes' as const,
    provider: 'cluster',
    region: 'kubeconfig',
    instanceType,
    target: 'kubernetes' as const,
  };
  const speed = ctx.calibration.node
    ? { factor: ctx.calibration.node, basis: 'calibrated' as const, key: 'node' }
    : cpuSpeed({ provider: 'aws', instanceType: 'unknown', arch: node.arch });
  const hw: Hardware = { vcpus: node.vcpus, memoryGiB: node.memoryGiB, speed, reserveGiB: NODE_RESERVE_GIB };
  const shape = shapeOn(ctx.model, hw, ctx.calibration);
  if (isProblem(shape)) return infeasibleOption(base, shape.kind, shape.reason, node.usdPerHour * 730);
  const estimates =
    speed.basis === 'calibrated'
      ? []
      : [`CPU speed of the cluster's nodes (${speed.basis}: calibrate with --speed node=F)`];
  if (priceBasis !== '--node-cost') estimates.push(`node price (${priceBasis})`);
  return fleetOption(ctx, {
    base,
    shape,
    usdPerInstanceHour: node.usdPerHour,
    minInstances: 1,
    estimates,
    what: `your cluster's nodes at $${node.usdPerHour}/h (${priceBasis}), scaled hourly`,
  });
}

export function managedClusterOption(ctx: StrategyContext, inst: InstancePrice): PlanOption {
  const base = {
    id: optionId('kubernetes', inst.provider, inst.region, inst.instanceType),
    strategy: 'kubernetes' as const,
    provider: inst.provider,
    region: inst.region,
    instanceType: inst.instanceType,
  };
  const hw = { ...hardwareOf(inst, ctx.calibration, ctx.constraints.gpu === true), reserveGiB: NODE_RESERVE_GIB };
  const shape = shapeOn(ctx.model, hw, ctx.calibration);
  if (isProblem(shape)) return infeasibleOption(base, shape.kind, shape.reason, inst.onDemandUsdPerHour * 730);
  const fee = CONTROL_PLANE_USD_PER_HOUR[inst.provider] ?? 0;
  return fleetOption(ctx, {
    base,
    shape,
    usdPerInstanceHour: inst.onDemandUsdPerHour,
    usdPerHourFixed: fee,
    minInstances: 1,
    estimates: instanceEstimates(inst, hw.speed.basis, hw.speed.key),
    what: `managed cluster, ${inst.instanceType} nodes at $${inst.onDemandUsdPerHour}/h + control plane $${fee}/h, scaled hourly`,
  });
}

/**
 * The user's cluster's node when no --node-cost is given: priced as the cheapest x86 catalog instance with
 * at least 2 vCPUs and 4 GiB (an estimate of what a small node costs; the table says so).
 */
export function estimatedClusterNode(catalog: {
  instances: InstancePrice[];
}): { node: KubernetesNode; priceBasis: string } | undefined {
  const fit = catalog.instances
    .filter((i) => i.arch === 'x86_64' && !i.accelerator && i.vcpus >= 2 && i.memoryGiB >= 4)
    .sort((a, b) => a.onDemandUsdPerHour - b.onDemandUsdPerHour || a.instanceType.localeCompare(b.instanceType))[0];
  if (!fit) return undefined;
  return {
    node: { usdPerHour: fit.onDemandUsdPerHour, vcpus: fit.vcpus, memoryGiB: fit.memoryGiB, arch: fit.arch },
    priceBasis: `priced as ${fit.instanceType} in ${fit.region} from the catalog; set --node-cost`,
  };
}
