/**
 * The predictive floor: how many replicas to keep ready ahead of a predicted rise, decided at each
 * monitor collection from the forecast of the next minutes.
 *
 * - Lead time: a replica asked for now is ready after the measured cold start, and the next decision
 *   comes an interval later, so the floor covers the forecast peak over [now, now + coldStart +
 *   interval + margin]: the replicas are up before the traffic they are for.
 * - Sizing: a replica serves `targetInFlight` requests at once, each for the measured mean latency, so
 *   it handles targetInFlight × 60 000 / latencyMs requests a minute; the floor is the forecast peak
 *   over that, rounded up, with `headroom` for the forecast's error.
 * - Waking: a floor above zero on a hibernated deployment wakes it (expected requests in the window of
 *   at least `wakeAtRequests`, so a lone predicted request an hour away does not keep it up).
 * - A forecast never removes capacity: the floor is a lower bound on the autoscaler (its minReplicas);
 *   when the forecast falls the floor goes back to the configured minimum and reactive scaling, with
 *   its scale-down delay, decides when replicas go. The floor never hibernates anything.
 */
import type { Forecaster } from './forecast';

export const PREDICTIVE_MODES = ['on', 'off', 'forecast-only'] as const;
export type PredictiveMode = (typeof PREDICTIVE_MODES)[number];

export interface FloorInput {
  mode: PredictiveMode;
  /** Per-minute request counts, oldest first; the last one is the current minute. */
  history: number[];
  forecaster: Forecaster;
  coldStartMs: number;
  intervalMs: number;
  /** Extra minutes of lead beyond cold start + interval. */
  marginMinutes: number;
  targetInFlight: number;
  /** Mean request latency (ms) measured on this deployment. */
  latencyMs: number;
  /** The user's own minimum (0 with scale to zero) and maximum. */
  configuredMin: number;
  maxReplicas: number;
  headroom: number;
  wakeAtRequests: number;
  hibernated: boolean;
}

export interface FloorDecision {
  /** The floor to set (the configured minimum when no rise is predicted). */
  floor: number;
  /** Wake the hibernated deployment now. */
  wake: boolean;
  /** Whether the decision is to be applied (`on`) or only recorded (`forecast-only`). */
  apply: boolean;
  /** The forecast peak per minute over the lead window, and the window's length. */
  forecastPeakPerMinute: number;
  expectedRequests: number;
  leadMinutes: number;
  reason: string;
}

export function decideFloor(input: FloorInput): FloorDecision {
  const leadMinutes = Math.max(1, Math.ceil((input.coldStartMs + input.intervalMs) / 60_000 + input.marginMinutes));
  const i = input.history.length - 1;
  let peak = 0;
  let expected = 0;
  for (let h = 1; h <= leadMinutes; h++) {
    const f = i >= 0 ? input.forecaster.forecast(input.history, i, h) : 0;
    peak = Math.max(peak, f);
    expected += f;
  }
  const perReplicaPerMinute = (input.targetInFlight * 60_000) / Math.max(1, input.latencyMs);
  let wanted = Math.ceil((peak * input.headroom) / perReplicaPerMinute - 1e-9);
  if (expected < input.wakeAtRequests) wanted = 0;
  const floor = Math.min(input.maxReplicas, Math.max(input.configuredMin, wanted));
  const wake = input.hibernated && floor > 0 && expected >= input.wakeAtRequests;
  const apply = input.mode === 'on';
  const reason =
    input.mode === 'off'
      ? 'predictive scaling is off'
      : wanted > input.configuredMin
        ? `forecast peak ${peak.toFixed(1)}/min within ${leadMinutes} min needs ${wanted} replica(s)`
        : `no rise above the configured minimum forecast within ${leadMinutes} min`;
  return {
    floor: input.mode === 'off' ? input.configuredMin : floor,
    wake: apply && wake,
    apply,
    forecastPeakPerMinute: peak,
    expectedRequests: expected,
    leadMinutes,
    reason,
  };
}
