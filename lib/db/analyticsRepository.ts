/**
 * The monitor's analytics in PostgreSQL (migration 006): each collection interval's cost and signals,
 * and the anomalies the detector opened and cleared. Writes are idempotent upserts (activities may run
 * more than once).
 */
import type { Pool } from 'pg';
import type { IntervalCost, ResourcePrice } from '../analytics/costAccounting';

export interface CostRow extends IntervalCost {
  latencyP95Ms: number | null;
  pricing: { price: ResourcePrice; request: { cpus: number; memoryGiB: number } };
}

export interface AnomalyRow {
  id: number;
  deploymentId: string;
  signal: string;
  since: string;
  openedAt: string;
  clearedAt: string | null;
  peakScore: number;
  detail: Record<string, unknown>;
}

/** A predictive decision as stored: the forecast peak per minute over `leadMinutes`, and the floor. */
export interface ForecastRow {
  at: number;
  mode: string;
  forecastPerMinute: number;
  leadMinutes: number;
  floor: number;
  applied: boolean;
  reason: string;
}

export class AnalyticsRepository {
  constructor(private readonly pool: Pool) {}

  async recordCost(deploymentId: string, c: CostRow): Promise<void> {
    await this.pool.query(
      `INSERT INTO deployment_costs(deployment_id, interval_start, interval_end, replica_seconds, allocated_usd,
         idle_usd, requests, errors, busy_seconds, cold_starts, cold_start_ms, per_1k_usd, latency_p95_ms,
         by_revision, pricing)
       VALUES ($1, to_timestamp($2 / 1000.0), to_timestamp($3 / 1000.0), $4, $5, $6, $7, $8, $9, $10, $11, $12,
         $13, $14, $15)
       ON CONFLICT (deployment_id, interval_end) DO NOTHING`,
      [
        deploymentId,
        c.from,
        c.to,
        c.replicaSeconds,
        c.allocatedUsd,
        c.idleUsd,
        c.requests,
        c.errors,
        c.busySeconds,
        c.coldStarts,
        c.coldStartMs,
        c.per1kUsd,
        c.latencyP95Ms,
        JSON.stringify(c.byRevision),
        JSON.stringify(c.pricing),
      ],
    );
  }

  /** Intervals that ended after `sinceMs`, oldest first. */
  async costs(deploymentId: string, sinceMs: number, limit = 50_000): Promise<CostRow[]> {
    const res = await this.pool.query(
      `SELECT extract(epoch FROM interval_start) * 1000 AS "from", extract(epoch FROM interval_end) * 1000 AS "to",
         replica_seconds, allocated_usd, idle_usd, requests, errors, busy_seconds, cold_starts, cold_start_ms,
         per_1k_usd, latency_p95_ms, by_revision, pricing
       FROM deployment_costs WHERE deployment_id = $1 AND interval_end > to_timestamp($2 / 1000.0)
       ORDER BY interval_end LIMIT $3`,
      [deploymentId, sinceMs, limit],
    );
    return res.rows.map((r) => ({
      from: Number(r.from),
      to: Number(r.to),
      replicaSeconds: Number(r.replica_seconds),
      allocatedUsd: Number(r.allocated_usd),
      idleUsd: Number(r.idle_usd),
      requests: Number(r.requests),
      errors: Number(r.errors),
      busySeconds: Number(r.busy_seconds),
      coldStarts: Number(r.cold_starts),
      coldStartMs: r.cold_start_ms === null ? null : Number(r.cold_start_ms),
      per1kUsd: r.per_1k_usd === null ? null : Number(r.per_1k_usd),
      latencyP95Ms: r.latency_p95_ms === null ? null : Number(r.latency_p95_ms),
      byRevision: r.by_revision,
      pricing: r.pricing,
    }));
  }

  /** Per deployment, totals of the intervals that ended after `sinceMs` (the /metrics gauges). */
  async windowTotals(sinceMs: number): Promise<
    Array<{
      deploymentId: string;
      allocatedUsd: number;
      idleUsd: number;
      requests: number;
      spanSeconds: number;
      replicaSeconds: number;
    }>
  > {
    const res = await this.pool.query(
      `SELECT deployment_id, sum(allocated_usd) AS allocated, sum(idle_usd) AS idle, sum(requests) AS requests,
         sum(extract(epoch FROM interval_end - interval_start)) AS span, sum(replica_seconds) AS replica_seconds
       FROM deployment_costs WHERE interval_end > to_timestamp($1 / 1000.0) GROUP BY deployment_id ORDER BY deployment_id`,
      [sinceMs],
    );
    return res.rows.map((r) => ({
      deploymentId: r.deployment_id,
      allocatedUsd: Number(r.allocated),
      idleUsd: Number(r.idle),
      requests: Number(r.requests),
      spanSeconds: Number(r.span),
      replicaSeconds: Number(r.replica_seconds),
    }));
  }

  /** Opens an anomaly (once per signal and start); returns its id. */
  async openAnomaly(a: {
    deploymentId: string;
    signal: string;
    since: number;
    openedAt: number;
    peakScore: number;
    detail: Record<string, unknown>;
  }): Promise<number> {
    const res = await this.pool.query(
      `INSERT INTO deployment_anomalies(deployment_id, signal, since, opened_at, peak_score, detail)
       VALUES ($1, $2, to_timestamp($3 / 1000.0), to_timestamp($4 / 1000.0), $5, $6)
       ON CONFLICT (deployment_id, signal, since) DO UPDATE SET peak_score = deployment_anomalies.peak_score
       RETURNING id`,
      [a.deploymentId, a.signal, a.since, a.openedAt, a.peakScore, JSON.stringify(a.detail)],
    );
    return Number(res.rows[0].id);
  }

  async clearAnomaly(a: { deploymentId: string; signal: string; since: number; clearedAt: number; peakScore: number }) {
    await this.pool.query(
      `UPDATE deployment_anomalies SET cleared_at = COALESCE(cleared_at, to_timestamp($4 / 1000.0)),
         peak_score = GREATEST(peak_score, $5)
       WHERE deployment_id = $1 AND signal = $2 AND since = to_timestamp($3 / 1000.0)`,
      [a.deploymentId, a.signal, a.since, a.clearedAt, a.peakScore],
    );
  }

  /** The newest anomalies first; `openOnly` for the ones not cleared. */
  async anomalies(deploymentId: string, opts: { openOnly?: boolean; limit?: number } = {}): Promise<AnomalyRow[]> {
    const res = await this.pool.query(
      `SELECT id, deployment_id, signal, since, opened_at, cleared_at, peak_score, detail FROM deployment_anomalies
       WHERE deployment_id = $1 ${opts.openOnly ? 'AND cleared_at IS NULL' : ''}
       ORDER BY opened_at DESC LIMIT $2`,
      [deploymentId, opts.limit ?? 50],
    );
    return res.rows.map((r) => ({
      id: Number(r.id),
      deploymentId: r.deployment_id,
      signal: r.signal,
      since: new Date(r.since).toISOString(),
      openedAt: new Date(r.opened_at).toISOString(),
      clearedAt: r.cleared_at ? new Date(r.cleared_at).toISOString() : null,
      peakScore: Number(r.peak_score),
      detail: r.detail,
    }));
  }

  /** One predictive decision of the monitor (with `--predictive on|forecast-only`). */
  async recordForecast(deploymentId: string, f: Omit<ForecastRow, 'at'> & { at?: number }): Promise<void> {
    await this.pool.query(
      `INSERT INTO deployment_forecasts(deployment_id, at, mode, forecast_per_minute, lead_minutes, floor, applied, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        deploymentId,
        new Date(f.at ?? Date.now()),
        f.mode,
        f.forecastPerMinute,
        f.leadMinutes,
        f.floor,
        f.applied,
        f.reason,
      ],
    );
  }

  /** The decisions since `sinceMs`, oldest first. */
  async forecasts(deploymentId: string, sinceMs: number, limit = 10_000): Promise<ForecastRow[]> {
    const res = await this.pool.query(
      `SELECT at, mode, forecast_per_minute, lead_minutes, floor, applied, reason FROM deployment_forecasts
       WHERE deployment_id = $1 AND at >= $2 ORDER BY at, id LIMIT $3`,
      [deploymentId, new Date(sinceMs), limit],
    );
    return res.rows.map((r) => ({
      at: new Date(r.at).getTime(),
      mode: r.mode,
      forecastPerMinute: Number(r.forecast_per_minute),
      leadMinutes: r.lead_minutes,
      floor: r.floor,
      applied: r.applied,
      reason: r.reason,
    }));
  }
}
