/**
 * The monitor's predictive floor (lib/analytics/predictiveFloor.ts) at one collection: the forecast of
 * the next minutes from the deployment's stored per-minute history, and the replica floor it calls for,
 * set on the target (mode `on`) or only recorded (`forecast-only`). The floor is a lease of three
 * intervals, renewed at each collection: a monitor that stops leaves reactive scaling in charge.
 */
import { DAY_MINUTES, smoothedSeasonal } from '../../lib/analytics/forecast';
import { decideFloor } from '../../lib/analytics/predictiveFloor';
import { AnalyticsRepository } from '../../lib/db/analyticsRepository';
import { getPool } from '../../lib/db/pool';
import type { DeploymentTargetChoice, PredictiveMode, PredictiveOutcome } from '../../workflows/types';
import { activityDeps, targetFor } from '../deps';

/** Three days of history: the smoothed seasonal forecaster's window (the best measured, bench/predictive-analytics.ts). */
const HISTORY_DAYS = 3;
const forecaster = smoothedSeasonal(HISTORY_DAYS);
/** Until a wake has been measured: a plain process start of a small model here. */
const DEFAULT_COLD_START_MS = 2000;
const DEFAULT_LATENCY_MS = 50;

export async function applyPredictiveFloor(input: {
  deploymentId: string;
  target?: DeploymentTargetChoice;
  mode: Exclude<PredictiveMode, 'off'>;
  intervalMs: number;
}): Promise<PredictiveOutcome> {
  const { repo } = activityDeps();
  const target = await targetFor(input.target);
  const status = await target.status(input.deploymentId);
  const history = await repo.requestsPerMinute(input.deploymentId, HISTORY_DAYS * DAY_MINUTES + 1);
  const latest = await repo.lastMetrics(input.deploymentId);
  const scaling = status.autoscaling;
  const fixed = status.desiredReplicas || 1;
  const decision = decideFloor({
    mode: input.mode,
    history,
    forecaster,
    coldStartMs: status.lastWakeMs ?? DEFAULT_COLD_START_MS,
    intervalMs: input.intervalMs,
    marginMinutes: 1,
    targetInFlight: scaling?.targetInFlight ?? 1,
    latencyMs: latest?.latencyP50Ms ?? DEFAULT_LATENCY_MS,
    // The monitor hibernates any idle deployment, so zero is the baseline: a floor above it keeps the
    // deployment up (and wakes it) while requests are forecast; the autoscaler's own minimum still holds.
    configuredMin: 0,
    maxReplicas: scaling?.maxReplicas ?? fixed,
    headroom: 1.2,
    wakeAtRequests: 1,
    hibernated: status.state === 'hibernated',
  });
  const outcome: PredictiveOutcome = {
    at: new Date().toISOString(),
    mode: input.mode,
    floor: decision.floor,
    applied: false,
    woke: false,
    forecastPeakPerMinute: decision.forecastPeakPerMinute,
    expectedRequests: decision.expectedRequests,
    leadMinutes: decision.leadMinutes,
    reason: decision.reason,
  };
  await new AnalyticsRepository(getPool(activityDeps().config.postgres.url)).recordForecast(input.deploymentId, {
    mode: input.mode,
    forecastPerMinute: decision.forecastPeakPerMinute,
    leadMinutes: decision.leadMinutes,
    floor: decision.floor,
    applied: decision.apply && target.setReplicaFloor !== undefined,
    reason: decision.reason,
  });
  if (!decision.apply) return outcome;
  if (!target.setReplicaFloor) {
    return { ...outcome, reason: `the ${target.name} target takes no replica floor: scaled reactively only` };
  }
  // Renewed at each collection; 0 clears it when no rise is forecast any more.
  await target.setReplicaFloor(input.deploymentId, {
    replicas: decision.floor,
    ttlMs: Math.max(1000, 3 * input.intervalMs),
  });
  if (decision.wake) {
    await repo.recordEvent(input.deploymentId, 'woke', {
      by: 'predictive floor',
      floor: decision.floor,
      reason: decision.reason,
    });
  }
  return { ...outcome, applied: true, woke: decision.wake };
}
