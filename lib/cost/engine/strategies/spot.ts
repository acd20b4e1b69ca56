/**
 * VM spot with an on-demand fallback, after SkyServe's SpotHedge (Mao et al., NSDI '24): spot instances
 * spread over the cheapest zones that have a spot market, overprovisioned by one, over a base of
 * on-demand instances that always runs; an interrupted spot instance
 * is replaced in the cheapest zone still available (on demand while no spot can be had).
 *
 * Interruptions: the catalog's band (AWS Spot Instance Advisor's monthly frequency; the band's upper
 * bound, conservatively) as a rate per instance-hour. An interruption costs capacity from its 2-minute
 * notice (the replica drains) until the replacement serves: REPLACEMENT_MS, an estimate of launching an
 * instance, pulling Ferry's image and the cold start. The p95 mixes the normal fleet with the fleet short of
 * one instance and short of one zone's share, weighted by how long each lasts.
 */
import type { InstancePrice, InterruptionBand } from '../../catalog/types';
import {
  expectedLatency,
  hardwareOf,
  hourlyInstances,
  isProblem,
  type MinuteState,
  scheduleComponents,
  serversPerMinute,
  shapeOn,
} from '../capacity';
import type { PlanOption } from '../types';
import { describeInstances, fmtMs, infeasibleOption, rttTo, type StrategyContext } from './context';
import { instanceEstimates, vmOptionBase } from './vm';

/** From the interruption notice until the replacement serves (estimate: launch ~60 s, image and start ~60 s, margin). */
export const REPLACEMENT_MS = 180_000;
/** On-demand instances that always run under the spot ones (SkyServe's base_ondemand_fallback_replicas). */
export const ON_DEMAND_BASE = 1;
/** Zones to spread spot over, at most. */
export const MAX_SPOT_ZONES = 3;

/** Monthly interruption frequency → share of instances interrupted per month (the band's upper bound). */
const BAND_RATE: Record<InterruptionBand, number> = {
  '<5%': 0.05,
  '5-10%': 0.1,
  '10-15%': 0.15,
  '15-20%': 0.2,
  '>20%': 0.3,
};
/** A type whose band is not published: assumed in the worst band but one. */
const UNKNOWN_BAND_RATE = 0.2;

export function interruptionsPerInstanceHour(band: InterruptionBand | undefined): number {
  return (band ? BAND_RATE[band] : UNKNOWN_BAND_RATE) / 730;
}

/** Spot instances run beyond what the load needs (SpotHedge overprovisions by a small fixed number). */
export const SPOT_OVERPROVISION = 1;

/**
 * On-demand and spot instances for a load that needs `needed`: the base on demand, the rest on spot plus
 * the overprovisioning. A zone-wide reclaim beyond it is left to the on-demand fallback (its short window
 * is in the p95 mixture).
 */
export function spotSplit(needed: number): { onDemand: number; spot: number } {
  const onDemand = Math.min(needed, ON_DEMAND_BASE);
  const core = needed - onDemand;
  return { onDemand, spot: core === 0 ? 0 : core + SPOT_OVERPROVISION };
}

export function spotOption(ctx: StrategyContext, inst: InstancePrice): PlanOption | undefined {
  const zonePrices = Object.entries(inst.spotUsdPerHour ?? {}).sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
  if (zonePrices.length === 0) return undefined;
  const base = vmOptionBase('vm-spot', inst);
  const hw = hardwareOf(inst, ctx.calibration, ctx.constraints.gpu === true);
  const shape = shapeOn(ctx.model, hw, ctx.calibration);
  if (isProblem(shape)) return infeasibleOption(base, shape.kind, shape.reason, inst.onDemandUsdPerHour * 730);

  const zones = zonePrices.slice(0, MAX_SPOT_ZONES);
  const spotPrice = zones.reduce((a, [, p]) => a + p, 0) / zones.length;
  const rtt = rttTo(ctx, inst.region);
  const rates = ctx.profile.perMinuteRps;
  const servers = serversPerMinute(shape.service, rates, ctx.constraints.sloP95Ms - rtt);
  const estimates = [
    ...instanceEstimates(inst, hw.speed.basis, hw.speed.key),
    `replacement after an interruption (${REPLACEMENT_MS / 1000} s)`,
  ];
  if (!inst.interruption) estimates.push('interruption band (not published: assumed 15-20%)');
  if (!servers) {
    return {
      ...infeasibleOption(
        base,
        'slo-unmet',
        `SLO unmet: the service time alone is p95 ${shape.service.p95Ms.toFixed(0)} ms on ${inst.instanceType}`,
      ),
      estimates,
    };
  }
  const needed = hourlyInstances(servers, shape.serversPerInstance, 1);
  const split = needed.map((n) => spotSplit(n));
  const onDemand = split.map((s) => s.onDemand);
  const spot = split.map((s) => s.spot);
  const rate = interruptionsPerInstanceHour(inst.interruption);
  const windowH = REPLACEMENT_MS / 3_600_000;
  const spi = shape.serversPerInstance;

  const states = (m: number): MinuteState[] => {
    const h = Math.floor(m / 60);
    const total = (onDemand[h] + spot[h]) * spi;
    if (spot[h] === 0) return [{ weight: 1, servers: total }];
    const oneLost = Math.min(1, spot[h] * rate * windowH);
    // A zone-wide reclaim: each zone at the per-instance rate (an estimate; AWS publishes no zone figure).
    const zoneLost = Math.min(1 - oneLost, zones.length * rate * windowH);
    const zoneShare = Math.ceil(spot[h] / zones.length);
    return [
      { weight: 1 - oneLost - zoneLost, servers: total },
      { weight: oneLost, servers: total - spi },
      { weight: zoneLost, servers: total - zoneShare * spi },
    ];
  };
  const lat = expectedLatency(scheduleComponents(shape.service, rates, states), ctx.constraints.sloP95Ms, rtt);
  const spotHours = spot.reduce((a, b) => a + b, 0);
  const odHours = onDemand.reduce((a, b) => a + b, 0);
  // Replacements run on demand while spot is found again: the window's share of spot hours, at on-demand price.
  const fallbackHours = spotHours * rate * windowH;
  const monthly =
    (odHours * inst.onDemandUsdPerHour + spotHours * spotPrice + fallbackHours * inst.onDemandUsdPerHour) *
    ctx.monthScale;
  const sloMet = lat.p95Ms <= ctx.constraints.sloP95Ms;
  const total = needed.map((_, h) => onDemand[h] + spot[h]);
  const inst_ = describeInstances(total);
  const maxSpot = Math.max(...spot);
  return {
    ...base,
    monthlyCostUsd: monthly,
    p95Ms: lat.p95Ms,
    withinSloShare: lat.withinSloShare,
    feasible: sloMet,
    ...(sloMet
      ? {}
      : {
          reasonKind: 'slo-unmet' as const,
          reason: `SLO unmet: p95 ${fmtMs(lat.p95Ms)} > ${ctx.constraints.sloP95Ms} ms`,
        }),
    risk: maxSpot === 0 ? 'low' : 'medium',
    why:
      maxSpot === 0
        ? `at this load the on-demand base (${ON_DEMAND_BASE}) is the whole fleet: no spot instance runs`
        : `${ON_DEMAND_BASE} on demand ($${inst.onDemandUsdPerHour}/h) + up to ${maxSpot} spot (mean $${spotPrice.toFixed(4)}/h) over ${zones.map(([z]) => z).join(', ')} (+${SPOT_OVERPROVISION} overprovisioned); interruption band ${inst.interruption ?? 'unpublished'}`,
    instances: inst_,
    deployable: false,
    estimates,
    ...(ctx.constraints.usersIn ? { networkRttMs: rtt } : {}),
    schedule: { serversPerInstance: spi, onDemand, spot, zones: zones.map(([z]) => z) },
    service: shape.service,
  };
}
