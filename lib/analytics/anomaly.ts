/**
 * Anomaly detection on the monitor's per-interval signals (latency p95, error rate, cold-start rate and
 * duration, cost per 1k, request rate).
 *
 * - Baseline: the same time of day on earlier days (±`seasonalHalfWidthMin` minutes, up to
 *   `seasonalDays` days back) once at least `minSeasonalDays` days of history exist; before that, the
 *   rolling window of the last `rollingMinutes` minutes.
 * - Score: robust, (x − median) / (1.4826 · MAD), with a floor on the scale so a signal that is almost
 *   always the same (an error rate of 0) does not alarm on the first tiny change. Median and MAD keep
 *   their meaning on skewed data (latency tails, error rates at low traffic), where a mean and standard
 *   deviation are dragged by the very outliers they are meant to flag.
 * - Alerting: the score must stay above `openScore` for `minMinutes` before an anomaly opens, and it
 *   clears once the score stayed below `clearScore` for `clearMinutes` (hysteresis, so it does not flap).
 *
 * `plainZRule` is the reference it is measured against: z > 3 (mean and standard deviation of the last
 * hour) for 5 minutes, as GitLab's runbooks alert.
 *
 * Pure: the caller passes the history and the time.
 */
import { quantile } from './usagePattern';

export type SignalName = 'latencyP95Ms' | 'errorRate' | 'coldStartRate' | 'coldStartMs' | 'per1kUsd' | 'requestRate';

export const SIGNALS: SignalName[] = [
  'latencyP95Ms',
  'errorRate',
  'coldStartRate',
  'coldStartMs',
  'per1kUsd',
  'requestRate',
];

export interface Point {
  t: number;
  v: number;
}

export interface DetectorSettings {
  openScore: number;
  clearScore: number;
  minMinutes: number;
  clearMinutes: number;
  seasonalDays: number;
  minSeasonalDays: number;
  seasonalHalfWidthMin: number;
  rollingMinutes: number;
  /** Which side is anomalous: a high latency is, a low one is not; the request rate is both ways. */
  direction: 'up' | 'both';
  /** The smallest scale the score divides by, as an absolute figure and as a share of the median. */
  minScale: number;
  minRelativeScale: number;
}

const DAY_MS = 86_400_000;
const MIN_MS = 60_000;

const BASE: Omit<DetectorSettings, 'direction' | 'minScale' | 'minRelativeScale'> = {
  openScore: 4,
  clearScore: 2,
  minMinutes: 5,
  clearMinutes: 3,
  seasonalDays: 7,
  minSeasonalDays: 2,
  seasonalHalfWidthMin: 10,
  rollingMinutes: 60,
};

/** Per signal: which way is bad and what change is too small to matter whatever the history says. */
export const SIGNAL_SETTINGS: Record<SignalName, DetectorSettings> = {
  latencyP95Ms: { ...BASE, direction: 'up', minScale: 2, minRelativeScale: 0.05 },
  errorRate: { ...BASE, direction: 'up', minScale: 0.005, minRelativeScale: 0.1 },
  coldStartRate: { ...BASE, direction: 'up', minScale: 0.5, minRelativeScale: 0.1 },
  coldStartMs: { ...BASE, direction: 'up', minScale: 50, minRelativeScale: 0.1 },
  per1kUsd: { ...BASE, direction: 'up', minScale: 1e-6, minRelativeScale: 0.05 },
  requestRate: { ...BASE, direction: 'both', minScale: 2, minRelativeScale: 0.1 },
};

export interface Baseline {
  median: number;
  scale: number;
  kind: 'seasonal' | 'rolling' | 'none';
  n: number;
}

/**
 * The baseline of time `t` from `history` (oldest first; points at or after `t` are never read). The window values are taken
 * with a binary search on time, so a week of minutes costs a few thousand comparisons.
 */
export function baselineAt(history: Point[], t: number, s: DetectorSettings): Baseline {
  const values: number[] = [];
  let kind: Baseline['kind'] = 'none';
  const first = history.length ? history[0].t : t;
  const days = Math.min(s.seasonalDays, Math.floor((t - first) / DAY_MS));
  if (days >= s.minSeasonalDays) {
    kind = 'seasonal';
    for (let d = 1; d <= days; d++) {
      const centre = t - d * DAY_MS;
      pushRange(history, centre - s.seasonalHalfWidthMin * MIN_MS, centre + s.seasonalHalfWidthMin * MIN_MS, values);
    }
  } else {
    kind = 'rolling';
    pushRange(history, t - s.rollingMinutes * MIN_MS, t - 1, values);
  }
  if (values.length < 5) return { median: 0, scale: 0, kind: 'none', n: values.length };
  const median = quantile(values, 0.5);
  const mad = quantile(
    values.map((v) => Math.abs(v - median)),
    0.5,
  );
  const scale = Math.max(1.4826 * mad, s.minScale, s.minRelativeScale * Math.abs(median));
  return { median, scale, kind, n: values.length };
}

function pushRange(history: Point[], from: number, to: number, out: number[]): void {
  let lo = 0;
  let hi = history.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (history[mid].t < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < history.length && history[i].t <= to; i++) out.push(history[i].v);
}

export function robustScore(value: number, b: Baseline, direction: DetectorSettings['direction']): number {
  if (b.kind === 'none' || !(b.scale > 0)) return 0;
  const z = (value - b.median) / b.scale;
  return direction === 'up' ? z : Math.abs(z);
}

/** The alerting state of one signal, small enough to carry in the monitor workflow's status. */
export interface AlertState {
  above: number;
  below: number;
  open: { since: number; peakScore: number; baseline: number } | null;
}

export const initialAlertState = (): AlertState => ({ above: 0, below: 0, open: null });

export type AlertTransition =
  | { kind: 'opened'; since: number; score: number; value: number; baseline: number }
  | { kind: 'cleared'; since: number; until: number; peakScore: number }
  | null;

/** One step of the hysteresis: the new state and whether an anomaly opened or cleared. */
export function stepAlert(
  state: AlertState,
  t: number,
  score: number,
  value: number,
  baseline: number,
  s: Pick<DetectorSettings, 'openScore' | 'clearScore' | 'minMinutes' | 'clearMinutes'>,
  /** How far apart the steps are: the minimum durations are in minutes, whatever the interval. */
  stepMs = MIN_MS,
): { state: AlertState; transition: AlertTransition } {
  const steps = (minutes: number) => Math.max(1, Math.ceil((minutes * MIN_MS) / stepMs));
  const above = score > s.openScore ? state.above + 1 : 0;
  const below = score < s.clearScore ? state.below + 1 : 0;
  if (!state.open) {
    if (above >= steps(s.minMinutes)) {
      const since = t - (steps(s.minMinutes) - 1) * stepMs;
      return {
        state: { above, below, open: { since, peakScore: score, baseline } },
        transition: { kind: 'opened', since, score, value, baseline },
      };
    }
    return { state: { above, below, open: null }, transition: null };
  }
  const open = { ...state.open, peakScore: Math.max(state.open.peakScore, score) };
  if (below >= steps(s.clearMinutes)) {
    return {
      state: { above, below, open: null },
      transition: { kind: 'cleared', since: open.since, until: t, peakScore: open.peakScore },
    };
  }
  return { state: { above, below, open }, transition: null };
}

export interface DetectedAnomaly {
  signal: SignalName;
  openedAt: number;
  /** When the excursion started (the first minute of the run that opened it). */
  since: number;
  clearedAt: number | null;
  peakScore: number;
}

/** A detector over a whole series (the evaluation and the bench): minute points, oldest first. */
export type SeriesDetector = (series: Point[]) => Array<{ openedAt: number; since: number; clearedAt: number | null }>;

export function robustSeasonalDetector(signal: SignalName, overrides: Partial<DetectorSettings> = {}): SeriesDetector {
  const s = { ...SIGNAL_SETTINGS[signal], ...overrides };
  return (series) => {
    const out: Array<{ openedAt: number; since: number; clearedAt: number | null }> = [];
    let state = initialAlertState();
    for (let i = 0; i < series.length; i++) {
      const { t, v } = series[i];
      // Every window baselineAt reads ends before t, so the whole series can be passed.
      const b = baselineAt(series, t, s);
      const step = stepAlert(state, t, robustScore(v, b, s.direction), v, b.median, s);
      state = step.state;
      if (step.transition?.kind === 'opened') out.push({ openedAt: t, since: step.transition.since, clearedAt: null });
      if (step.transition?.kind === 'cleared') out[out.length - 1].clearedAt = t;
    }
    return out;
  };
}

/** The reference rule: z = (x − mean) / sd over the last hour, alert while z > 3 for 5 minutes. */
export function plainZRule(direction: DetectorSettings['direction'], windowMinutes = 60, minutes = 5): SeriesDetector {
  return (series) => {
    const out: Array<{ openedAt: number; since: number; clearedAt: number | null }> = [];
    let run = 0;
    let open = false;
    for (let i = 0; i < series.length; i++) {
      const window = series.slice(Math.max(0, i - windowMinutes), i).map((p) => p.v);
      let z = 0;
      if (window.length >= 5) {
        const mean = window.reduce((a, b) => a + b, 0) / window.length;
        const sd = Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length);
        z = sd > 0 ? (series[i].v - mean) / sd : series[i].v > mean ? Infinity : 0;
        if (direction === 'both') z = Math.abs(z);
      }
      run = z > 3 ? run + 1 : 0;
      if (!open && run >= minutes) {
        open = true;
        out.push({ openedAt: series[i].t, since: series[i - minutes + 1].t, clearedAt: null });
      } else if (open && run === 0) {
        open = false;
        out[out.length - 1].clearedAt = series[i].t;
      }
    }
    return out;
  };
}

export interface FaultWindow {
  from: number;
  to: number;
}

export interface DetectionScore {
  alerts: number;
  truePositives: number;
  falsePositives: number;
  faults: number;
  faultsDetected: number;
  precision: number;
  recall: number;
  /** False alerts per day of trace. */
  falseAlarmsPerDay: number;
  /** Mean minutes from a fault's start to the alert that caught it. */
  meanDelayMinutes: number | null;
}

/**
 * Event-level scoring: an alert is true when it opens during a fault (or within `graceMs` after its
 * end, the time a clean minute takes to enter the score); a fault is detected when a true alert
 * falls in it. Alerts during the first `warmupMs` are not counted (no baseline yet, either way).
 */
export function scoreDetections(
  alerts: Array<{ openedAt: number }>,
  faults: FaultWindow[],
  span: { from: number; to: number },
  graceMs = 5 * MIN_MS,
): DetectionScore {
  let tp = 0;
  const detected = new Set<number>();
  const delays: number[] = [];
  for (const a of alerts) {
    const hit = faults.findIndex((f) => a.openedAt >= f.from && a.openedAt <= f.to + graceMs);
    if (hit >= 0) {
      tp++;
      if (!detected.has(hit)) delays.push((a.openedAt - faults[hit].from) / MIN_MS);
      detected.add(hit);
    }
  }
  const fp = alerts.length - tp;
  const days = Math.max(1e-9, (span.to - span.from) / DAY_MS);
  return {
    alerts: alerts.length,
    truePositives: tp,
    falsePositives: fp,
    faults: faults.length,
    faultsDetected: detected.size,
    precision: alerts.length ? tp / alerts.length : 1,
    recall: faults.length ? detected.size / faults.length : 1,
    falseAlarmsPerDay: fp / days,
    meanDelayMinutes: delays.length ? delays.reduce((a, b) => a + b, 0) / delays.length : null,
  };
}
