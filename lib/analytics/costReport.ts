/**
 * A deployment's cost report from its stored intervals: the summary `ferry cost` prints (and --json
 * gives), and the points the dashboard charts. One place, so the CLI, the API and the dashboard agree.
 */
import type { AnalyticsRepository } from '../db/analyticsRepository';
import { summarizeCost } from './costAccounting';

export interface CostReport {
  deploymentId: string;
  /** The window the figures cover. */
  from: string | null;
  to: string | null;
  per1kUsd: number | null;
  perDayUsd: number;
  projectedMonthUsd: number;
  allocatedUsd: number;
  idleUsd: number;
  replicaSeconds: number;
  requests: number;
  coldStarts: number;
  coldStartMeanMs: number | null;
  coldStartMaxMs: number | null;
  byRevision: Record<string, { replicaSeconds: number; allocatedUsd: number }>;
  priceSource: string | null;
  usdPerHour: number | null;
  intervals: number;
  /** Per interval: its end (ms), cost per 1k, cost rate ($/h), replica-seconds and requests. */
  points: Array<{ t: number; per1kUsd: number | null; usdPerHour: number; replicaSeconds: number; requests: number }>;
}

export async function costReport(
  store: AnalyticsRepository,
  deploymentId: string,
  now: number,
  windowMs = 86_400_000,
): Promise<CostReport> {
  const rows = await store.costs(deploymentId, now - windowMs);
  const s = summarizeCost(rows);
  const last = rows.at(-1);
  return {
    deploymentId,
    from: s ? new Date(s.from).toISOString() : null,
    to: s ? new Date(s.to).toISOString() : null,
    per1kUsd: s?.per1kUsd ?? null,
    perDayUsd: s?.perDayUsd ?? 0,
    projectedMonthUsd: s?.projectedMonthUsd ?? 0,
    allocatedUsd: s?.allocatedUsd ?? 0,
    idleUsd: s?.idleUsd ?? 0,
    replicaSeconds: s?.replicaSeconds ?? 0,
    requests: s?.requests ?? 0,
    coldStarts: s?.coldStarts ?? 0,
    coldStartMeanMs: s?.coldStartMeanMs ?? null,
    coldStartMaxMs: s?.coldStartMaxMs ?? null,
    byRevision: s?.byRevision ?? {},
    priceSource: last?.pricing.price?.source ?? null,
    usdPerHour: last?.pricing.price?.usdPerHour ?? null,
    intervals: rows.length,
    points: rows.map((r) => ({
      t: r.to,
      per1kUsd: r.per1kUsd,
      usdPerHour: r.to > r.from ? (r.allocatedUsd / (r.to - r.from)) * 3_600_000 : 0,
      replicaSeconds: r.replicaSeconds,
      requests: r.requests,
    })),
  };
}
