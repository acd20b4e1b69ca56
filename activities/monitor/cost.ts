/**
 * The monitor's analytics activities: the cost of each collection interval (stored in Postgres), the
 * anomaly scores of its signals against their stored history, the anomalies' openings and clearings
 * (stored, as events too), and the alert webhook. The decisions (when to open, clear, alert) are the
 * workflow's; these do the I/O.
 */
import * as os from 'node:os';
import {
  baselineAt,
  type Point,
  robustScore,
  SIGNAL_SETTINGS,
  SIGNALS,
  type SignalName,
} from '../../lib/analytics/anomaly';
import {
  type CostSummary,
  heldSecondsBetween,
  intervalCost,
  type ReplicaObservation,
  summarizeCost,
} from '../../lib/analytics/costAccounting';
import { type PlacementRef, resourcePrice } from '../../lib/analytics/resourcePrice';
import { shippedCatalog } from '../../lib/cost/catalog/load';
import type { PriceCatalog } from '../../lib/cost/catalog/types';
import { AnalyticsRepository, type CostRow } from '../../lib/db/analyticsRepository';
import { getPool } from '../../lib/db/pool';
import type { MetricsSnapshot } from '../../workflows/types';
import { activityDeps } from '../deps';

const DAY_MS = 86_400_000;
/** History the seasonal baseline reads: its 7 days back plus the window around the time of day. */
const BASELINE_HISTORY_MS = 8 * DAY_MS;

function analytics(): AnalyticsRepository {
  return new AnalyticsRepository(getPool(activityDeps().config.postgres.url));
}

let catalog: PriceCatalog | null | undefined;
function catalogOrNone(): PriceCatalog | undefined {
  if (catalog === undefined) {
    try {
      catalog = shippedCatalog();
    } catch {
      catalog = null; // a broken catalog must not stop the monitor: local pricing still works
    }
  }
  return catalog ?? undefined;
}

export interface SignalScore {
  value: number;
  score: number;
  baseline: number;
  baselineKind: 'seasonal' | 'rolling' | 'none';
}

export interface IntervalAccount {
  interval: CostRow;
  /** The last 24 hours (or as much as there is). */
  summary: CostSummary | null;
  /** The interval's signals scored against their history; absent when the signal has no value now. */
  scores: Partial<Record<SignalName, SignalScore>>;
}

/**
 * Prices the interval between two samples, stores it and scores its signals. Idempotent: a retry
 * writes the same interval (keyed by its end) once.
 */
export async function accountInterval(input: {
  deploymentId: string;
  previous?: MetricsSnapshot;
  current: MetricsSnapshot;
  /** When the monitor hibernated the replicas during the interval (they were held until then). */
  stoppedAt?: string;
}): Promise<IntervalAccount> {
  const { config, repo } = activityDeps();
  const store = analytics();
  const { previous, current } = input;
  const observation = (s: MetricsSnapshot): ReplicaObservation => ({
    at: Date.parse(s.at),
    replicas: (s.replicaSet ?? []).map((r) => ({
      key: r.key,
      revision: r.revision,
      startedAt: Date.parse(r.startedAt),
    })),
  });
  const cur = observation(current);
  const prev = previous ? observation(previous) : undefined;
  const row = await repo.getDeployment(input.deploymentId);
  const placement = (row?.config as { placement?: PlacementRef } | undefined)?.placement;
  const price = resourcePrice(placement, catalogOrNone(), {
    usdPerHour: config.monitoring.localCostPerHour,
    vcpus: os.cpus().length,
    memoryGiB: os.totalmem() / 1024 ** 3,
  });
  const resources = current.resources ?? previous?.resources ?? config.replicas.defaultResources;
  const request = { cpus: resources.cpus, memoryGiB: resources.memoryMb / 1024 };
  const counters = counterDeltas(previous?.replicaCounters ?? {}, current.replicaCounters ?? {});
  const coldStarts = Math.max(0, (current.coldStarts ?? 0) - (previous?.coldStarts ?? current.coldStarts ?? 0));
  // The first interval starts at the oldest replica's start (it was held since then).
  const from = prev?.at ?? Math.min(cur.at, ...cur.replicas.map((r) => r.startedAt));
  const cost = intervalCost({
    from,
    to: cur.at,
    heldSecondsByRevision: heldSecondsBetween(prev, cur, input.stoppedAt ? Date.parse(input.stoppedAt) : undefined),
    request,
    price,
    requests: current.requestsDelta,
    errors: counters.errors,
    busySeconds: counters.busySeconds,
    coldStarts,
    coldStartMs: current.lastWakeMs ?? null,
  });
  const interval: CostRow = { ...cost, latencyP95Ms: current.latencyP95Ms, pricing: { price, request } };
  const history = await store.costs(input.deploymentId, cur.at - BASELINE_HISTORY_MS);
  const scores = scoreInterval(
    interval,
    history.filter((h) => h.to < cur.at),
  );
  await store.recordCost(input.deploymentId, interval);
  const lastDay = history.filter((h) => h.to > cur.at - DAY_MS && h.to < cur.at);
  return { interval, summary: summarizeCost([...lastDay, cost]), scores };
}

/** Per-replica counter increments; a replica new since the last sample (or restarted) counts from zero. */
export function counterDeltas(
  previous: Record<string, { busySeconds: number; errors: number }>,
  current: Record<string, { busySeconds: number; errors: number }>,
): { busySeconds: number; errors: number } {
  let busySeconds = 0;
  let errors = 0;
  for (const [key, c] of Object.entries(current)) {
    const p = previous[key];
    const reset = !p || c.busySeconds < p.busySeconds || c.errors < p.errors;
    busySeconds += reset ? c.busySeconds : c.busySeconds - p.busySeconds;
    errors += reset ? c.errors : c.errors - p.errors;
  }
  return { busySeconds, errors };
}

/** The detector's signals of one stored interval (null where the interval has none, e.g. no request). */
export function signalsOf(c: CostRow | (CostRow & { from: number; to: number })): Record<SignalName, number | null> {
  const minutes = Math.max(1e-9, (c.to - c.from) / 60_000);
  return {
    latencyP95Ms: c.latencyP95Ms,
    errorRate: c.requests > 0 ? c.errors / c.requests : null,
    coldStartRate: c.coldStarts / minutes,
    coldStartMs: c.coldStarts > 0 ? c.coldStartMs : null,
    per1kUsd: c.per1kUsd,
    requestRate: c.requests / minutes,
  };
}

function scoreInterval(now: CostRow, history: CostRow[]): Partial<Record<SignalName, SignalScore>> {
  const current = signalsOf(now);
  const past = history.map(signalsOf);
  const out: Partial<Record<SignalName, SignalScore>> = {};
  for (const signal of SIGNALS) {
    const value = current[signal];
    if (value === null) continue;
    const points: Point[] = [];
    history.forEach((h, i) => {
      const v = past[i][signal];
      if (v !== null) points.push({ t: h.to, v });
    });
    const s = SIGNAL_SETTINGS[signal];
    const b = baselineAt(points, now.to, s);
    out[signal] = { value, score: robustScore(value, b, s.direction), baseline: b.median, baselineKind: b.kind };
  }
  return out;
}

export interface AnomalyTransitionInput {
  deploymentId: string;
  signal: SignalName;
  kind: 'opened' | 'cleared';
  since: string;
  at: string;
  score: number;
  value?: number;
  baseline?: number;
}

/** Stores an anomaly's opening or clearing, and the matching deployment event. */
export async function recordAnomalyTransition(input: AnomalyTransitionInput): Promise<void> {
  const { repo } = activityDeps();
  const store = analytics();
  const since = Date.parse(input.since);
  const at = Date.parse(input.at);
  const detail = {
    signal: input.signal,
    since: input.since,
    score: input.score,
    value: input.value,
    baseline: input.baseline,
  };
  if (input.kind === 'opened') {
    await store.openAnomaly({
      deploymentId: input.deploymentId,
      signal: input.signal,
      since,
      openedAt: at,
      peakScore: input.score,
      detail,
    });
    await repo.recordEventOnce(input.deploymentId, 'anomaly-opened', detail, {
      signal: input.signal,
      since: input.since,
    });
  } else {
    await store.clearAnomaly({
      deploymentId: input.deploymentId,
      signal: input.signal,
      since,
      clearedAt: at,
      peakScore: input.score,
    });
    await repo.recordEventOnce(
      input.deploymentId,
      'anomaly-cleared',
      { ...detail, clearedAt: input.at },
      {
        signal: input.signal,
        since: input.since,
      },
    );
  }
}

/**
 * Posts an alert to FERRY_ALERT_WEBHOOK_URL as Slack-compatible JSON ({text, blocks}); false when no
 * webhook is configured. A failed post throws, so the activity's retry policy retries it.
 */
export async function sendAnomalyAlert(input: AnomalyTransitionInput & { dashboardUrl?: string }): Promise<boolean> {
  const url = activityDeps().config.monitoring.alertWebhookUrl;
  if (!url) return false;
  const text = alertText(input);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`the alert webhook answered ${res.status}`);
  return true;
}

const SIGNAL_LABEL: Record<SignalName, string> = {
  latencyP95Ms: 'latency p95 (ms)',
  errorRate: 'error rate',
  coldStartRate: 'cold starts per minute',
  coldStartMs: 'cold start duration (ms)',
  per1kUsd: 'cost per 1k inferences (USD)',
  requestRate: 'requests per minute',
};

export function alertText(a: AnomalyTransitionInput & { dashboardUrl?: string }): string {
  const fmt = (v: number | undefined) => (v === undefined ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  const link = a.dashboardUrl ? ` <${a.dashboardUrl}|dashboard>` : '';
  return a.kind === 'opened'
    ? `:warning: *${a.deploymentId}*: ${SIGNAL_LABEL[a.signal]} is anomalous since ${a.since}: ${fmt(a.value)} against a usual ${fmt(a.baseline)} (score ${a.score.toFixed(1)}).${link}`
    : `:white_check_mark: *${a.deploymentId}*: ${SIGNAL_LABEL[a.signal]} is back to normal (anomalous from ${a.since} to ${a.at}, peak score ${a.score.toFixed(1)}).${link}`;
}
