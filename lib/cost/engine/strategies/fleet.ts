/**
 * Fleets of identical instances billed by the hour: a VM on demand, nodes of a Kubernetes cluster, this
 * machine, an edge device. Each hour runs the instances its busiest minute needs at the SLO (at least
 * `minInstances`); the p95 is that of the whole day's requests through that schedule.
 */
import { expectedLatency, hourlyInstances, type PoolShape, scheduleComponents, serversPerMinute } from '../capacity';
import type { PlanOption } from '../types';
import { describeInstances, fmtMs, rttTo, type StrategyContext } from './context';

export interface FleetSpec {
  base: Pick<PlanOption, 'id' | 'strategy' | 'provider' | 'region' | 'instanceType' | 'target'>;
  shape: PoolShape;
  usdPerInstanceHour: number;
  /** Instances that always run (1: no scale to zero). */
  minInstances: number;
  /** A fixed number of instances (this machine, a device): more cannot be added. */
  fixedInstances?: number;
  /** Added to every instance-hour (e.g. a cluster's control plane, spread over its nodes) — per hour, once. */
  usdPerHourFixed?: number;
  estimates: string[];
  what: string;
}

export function fleetOption(ctx: StrategyContext, spec: FleetSpec): PlanOption {
  const rtt = rttTo(ctx, spec.base.region);
  const rates = ctx.profile.perMinuteRps;
  const target = ctx.constraints.sloP95Ms - rtt;
  const servers = serversPerMinute(spec.shape.service, rates, target);
  const common = {
    ...spec.base,
    deployable: false,
    estimates: spec.estimates,
    ...(ctx.constraints.usersIn ? { networkRttMs: rtt } : {}),
  };
  if (!servers) {
    return unmet(common, spec, ctx, rtt);
  }
  let hours = hourlyInstances(servers, spec.shape.serversPerInstance, spec.minInstances);
  let shortOfCapacity: string | undefined;
  if (spec.fixedInstances !== undefined) {
    const needed = Math.max(...hours);
    if (needed > spec.fixedInstances)
      shortOfCapacity = `needs ${needed} × ${spec.shape.serversPerInstance} server(s) at the peak, it has ${spec.fixedInstances}`;
    hours = hours.map(() => spec.fixedInstances!);
  }
  const perHour = spec.shape.serversPerInstance;
  const comps = scheduleComponents(spec.shape.service, rates, (m) => [
    { weight: 1, servers: hours[Math.floor(m / 60)] * perHour },
  ]);
  const lat = expectedLatency(comps, ctx.constraints.sloP95Ms, rtt);
  const instanceHours = hours.reduce((a, b) => a + b, 0);
  const monthly =
    (instanceHours * spec.usdPerInstanceHour + hours.length * (spec.usdPerHourFixed ?? 0)) * ctx.monthScale;
  const inst = describeInstances(hours);
  const sloMet = lat.p95Ms <= ctx.constraints.sloP95Ms && !shortOfCapacity;
  return {
    ...common,
    monthlyCostUsd: monthly,
    p95Ms: lat.p95Ms,
    withinSloShare: lat.withinSloShare,
    feasible: sloMet,
    ...(sloMet
      ? {}
      : {
          reasonKind: 'slo-unmet' as const,
          reason: shortOfCapacity
            ? `SLO unmet: ${shortOfCapacity}`
            : `SLO unmet: p95 ${fmtMs(lat.p95Ms)} > ${ctx.constraints.sloP95Ms} ms`,
        }),
    risk: inst.max === 1 ? 'medium' : 'low',
    why: `${spec.what}: ${inst.min === inst.max ? inst.max : `${inst.min}–${inst.max}`} instance(s) × ${perHour} server(s) (service p50 ${spec.shape.service.p50Ms.toFixed(1)} ms, ${spec.shape.threadsPerServer} thread(s) each)${inst.max === 1 ? '; one instance: no redundancy' : ''}`,
    instances: inst,
    schedule: { serversPerInstance: perHour, onDemand: hours },
    service: spec.shape.service,
  };
}

function unmet(
  common: Omit<PlanOption, 'monthlyCostUsd' | 'p95Ms' | 'withinSloShare' | 'feasible' | 'risk' | 'why' | 'instances'>,
  spec: FleetSpec,
  ctx: StrategyContext,
  rtt: number,
): PlanOption {
  const alone = spec.shape.service.p95Ms + rtt;
  return {
    ...common,
    monthlyCostUsd: spec.usdPerInstanceHour * 24 * ctx.monthScale * spec.minInstances,
    p95Ms: alone,
    withinSloShare: 0,
    feasible: false,
    reasonKind: 'slo-unmet',
    reason: `SLO unmet: the service time alone is p95 ${spec.shape.service.p95Ms.toFixed(0)} ms${rtt ? ` + ${rtt} ms round trip` : ''} on ${spec.base.instanceType} (SLO ${ctx.constraints.sloP95Ms} ms)`,
    risk: 'high',
    why: spec.what,
    instances: { min: 0, max: 0, mean: 0 },
  };
}
