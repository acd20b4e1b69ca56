/**
 * Recommendations for a live deployment, each with its expected monthly saving and the evidence: what
 * the monitor recorded (priced intervals, per-minute requests and the usage pattern they make) against
 * how the deployment is scaled now. Pure: the API gathers the inputs, and applies a recommendation
 * through the same scaling change `ferry scale` sends.
 *
 * - scale-to-zero: no scale to zero is set, yet the deployment sat idle for long gaps; the replicas held
 *   through the part of those gaps past the proposed idle time would not have been paid for.
 * - right-size: a fixed replica count above what the busiest interval needed (requests in flight from
 *   Little's law: rate × p95 latency, with headroom); autoscaling between that and the current count
 *   would hold the difference only while load needs it.
 *
 * An id names the deployment, the kind and the change (`<deployment>.<kind>.<hash>`), so the same advice
 * keeps its id from one look to the next, and an id whose advice no longer holds is found missing.
 */
import { createHash } from 'node:crypto';
import type { ScalingChange } from '../targets/deploymentTarget';
import type { UsagePattern } from './usagePattern';

export type RecommendationKind = 'scale-to-zero' | 'right-size';

export interface Recommendation {
  id: string;
  deploymentId: string;
  kind: RecommendationKind;
  title: string;
  monthlySavingUsd: number;
  evidence: string;
  /** What applying it sends: a scaling change (PUT /scaling). */
  change: ScalingChange;
}

/** One priced interval, as the monitor stored it (lib/db/analyticsRepository.ts CostRow). */
export interface PricedInterval {
  from: number;
  to: number;
  replicaSeconds: number;
  allocatedUsd: number;
  requests: number;
  latencyP95Ms: number | null;
}

export interface RecommendationInput {
  deploymentId: string;
  intervals: PricedInterval[];
  usage: UsagePattern;
  /** How the deployment is scaled now (its gateway status). */
  scaling: {
    replicas: number;
    autoscaling: { minReplicas: number; maxReplicas: number; targetInFlight: number } | null;
    scaleToZeroAfterMs: number | null;
  };
}

const MONTH_MS = 30 * 86_400_000;
/** The idle time proposed for scale to zero, and the shortest gap that makes it worth recommending. */
export const PROPOSED_IDLE_MS = 10 * 60_000;
const MIN_GAP_MS = 15 * 60_000;
/** Headroom over the busiest interval's concurrency when sizing. */
const HEADROOM = 1.5;
/** Savings below this a month are not worth a change. */
const MIN_SAVING_USD = 0.01;

function idOf(deploymentId: string, kind: RecommendationKind, change: ScalingChange): string {
  const hash = createHash('sha256').update(JSON.stringify(change)).digest('hex').slice(0, 8);
  return `${deploymentId}.${kind}.${hash}`;
}

/** The deployment an id names (`<deployment>.<kind>.<hash>`, read from the end: an id may hold dots). */
export function deploymentOfRecommendation(id: string): string | undefined {
  const m = /^(.+)\.(scale-to-zero|right-size)\.[0-9a-f]{8}$/.exec(id);
  return m?.[1];
}

export function recommend(input: RecommendationInput): Recommendation[] {
  const { intervals } = input;
  if (intervals.length === 0) return [];
  const windowMs = intervals[intervals.length - 1]!.to - intervals[0]!.from;
  if (windowMs <= 0) return [];
  const allocated = intervals.reduce((s, i) => s + i.allocatedUsd, 0);
  const toMonth = MONTH_MS / windowMs;
  const out: Recommendation[] = [];

  if (input.scaling.scaleToZeroAfterMs === null) {
    const gaps = input.usage.idleGaps.filter((g) => g.durationMs >= MIN_GAP_MS);
    const saved = gaps.reduce((s, g) => s + (g.durationMs - PROPOSED_IDLE_MS), 0);
    // The cost of holding the replicas for `saved` ms, at the window's mean rate.
    const saving = allocated * (saved / windowMs) * toMonth;
    if (gaps.length > 0 && saving >= MIN_SAVING_USD) {
      const change: ScalingChange = { scaleToZeroAfterMs: PROPOSED_IDLE_MS };
      out.push({
        id: idOf(input.deploymentId, 'scale-to-zero', change),
        deploymentId: input.deploymentId,
        kind: 'scale-to-zero',
        title: `scale to zero after ${PROPOSED_IDLE_MS / 60_000} min idle`,
        monthlySavingUsd: saving,
        evidence:
          `${gaps.length} idle gap(s) of ${MIN_GAP_MS / 60_000}+ min (longest ${Math.round(input.usage.longestIdleGapMs / 60_000)} min) ` +
          `in ${(windowMs / 3_600_000).toFixed(1)} h; usage ${input.usage.kind}`,
        change,
      });
    }
  }

  const { replicas, autoscaling } = input.scaling;
  if (autoscaling === null && replicas >= 2) {
    let peak = 0;
    for (const i of intervals) {
      const seconds = (i.to - i.from) / 1000;
      if (seconds <= 0 || i.latencyP95Ms === null) continue;
      peak = Math.max(peak, (i.requests / seconds) * (i.latencyP95Ms / 1000));
    }
    const needed = Math.max(1, Math.ceil(peak * HEADROOM - 1e-9));
    const saving = allocated * ((replicas - needed) / replicas) * toMonth;
    if (needed < replicas && saving >= MIN_SAVING_USD) {
      const change: ScalingChange = { autoscaling: { minReplicas: needed, maxReplicas: replicas } };
      out.push({
        id: idOf(input.deploymentId, 'right-size', change),
        deploymentId: input.deploymentId,
        kind: 'right-size',
        title: `autoscale ${needed}–${replicas} replicas instead of a fixed ${replicas}`,
        monthlySavingUsd: saving,
        evidence: `the busiest interval had ${peak.toFixed(2)} request(s) in flight (rate × p95), which ${needed} replica(s) serve with ${HEADROOM}x headroom`,
        change,
      });
    }
  }
  return out.sort((a, b) => b.monthlySavingUsd - a.monthlySavingUsd);
}
