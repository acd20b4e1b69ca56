/**
 * Generated traces, seeded so every run sees the same numbers: per-minute request counts of the usage
 * patterns, and per-minute monitor signals (latency p95, error rate, cold starts, cost per 1k, request
 * rate) on a seasonal day with faults injected at known minutes. The anomaly detector, the forecasters
 * and the bench are measured on them.
 */
import { seededUniform } from '../seededRandom';
import { type FaultWindow, type Point, SIGNALS, type SignalName } from './anomaly';
import type { RequestSeries } from './usagePattern';

export const MINUTES_PER_DAY = 1440;

/** Standard normal deviates from a uniform source (Box–Muller). */
export function gaussian(uniform: () => number): () => number {
  return () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

/** A Poisson count of mean `mean` (Knuth below 30, normal approximation above). */
export function poisson(uniform: () => number, normal: () => number, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal()));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = uniform();
  while (p > limit) {
    k++;
    p *= uniform();
  }
  return k;
}

/** The expected per-minute rate of a diurnal day: a trough at 04:00, a peak at 16:00 (UTC minutes). */
export function diurnalRate(minuteOfDay: number, trough: number, peak: number): number {
  const phase = ((minuteOfDay - 4 * 60) / MINUTES_PER_DAY) * 2 * Math.PI;
  return trough + ((peak - trough) * (1 - Math.cos(phase))) / 2;
}

export interface RateTraceOptions {
  seed: number;
  days: number;
  /** Start of the trace (ms); midnight UTC by default so minute-of-day lines up. */
  start?: number;
}

export function diurnalRequests(o: RateTraceOptions & { trough: number; peak: number }): RequestSeries {
  return generated(o, (m) => diurnalRate(m % MINUTES_PER_DAY, o.trough, o.peak));
}

export function steadyRequests(o: RateTraceOptions & { rate: number }): RequestSeries {
  return generated(o, () => o.rate);
}

/** A low base with a burst of `burstRate` for `burstMinutes` roughly every `everyMinutes`. */
export function burstyRequests(
  o: RateTraceOptions & { base: number; burstRate: number; burstMinutes: number; everyMinutes: number },
): RequestSeries {
  const uniform = seededUniform(o.seed ^ 0x9e3779b9);
  const starts = new Set<number>();
  for (let m = 0; m < o.days * MINUTES_PER_DAY; m += Math.round(o.everyMinutes * (0.5 + uniform()))) starts.add(m);
  const inBurst = (m: number) => {
    for (let k = 0; k < o.burstMinutes; k++) if (starts.has(m - k)) return true;
    return false;
  };
  return generated(o, (m) => (inBurst(m) ? o.burstRate : o.base));
}

/** A handful of requests a day. */
export function idleRequests(o: RateTraceOptions & { perDay: number }): RequestSeries {
  return generated(o, () => o.perDay / MINUTES_PER_DAY);
}

/** A diurnal day with scheduled bursts on top (the bench's and the predictive floor's trace). */
export function diurnalWithBursts(
  o: RateTraceOptions & {
    trough: number;
    peak: number;
    bursts: Array<{ minute: number; minutes: number; rate: number }>;
  },
): RequestSeries {
  return generated(o, (m) => {
    const burst = o.bursts.find((b) => {
      const d = m % MINUTES_PER_DAY;
      return d >= b.minute && d < b.minute + b.minutes;
    });
    return diurnalRate(m % MINUTES_PER_DAY, o.trough, o.peak) + (burst?.rate ?? 0);
  });
}

function generated(o: RateTraceOptions, rate: (minute: number) => number): RequestSeries {
  const uniform = seededUniform(o.seed);
  const normal = gaussian(uniform);
  const counts: number[] = [];
  for (let m = 0; m < o.days * MINUTES_PER_DAY; m++) counts.push(poisson(uniform, normal, rate(m)));
  return { start: o.start ?? Date.parse('2026-11-02T00:00:00Z'), stepMs: 60_000, counts };
}

/** The monitor's signals, one point per minute. */
export interface SignalTrace {
  start: number;
  minutes: number;
  signals: Record<SignalName, Point[]>;
  /** The injected faults per signal (empty on a clean trace). */
  faults: Record<SignalName, FaultWindow[]>;
}

export type FaultKind = 'slowed-replica' | 'error-burst' | 'cost-jump' | 'slow-cold-start' | 'traffic-drop';

export interface InjectedFault {
  kind: FaultKind;
  /** Minute from the trace's start. */
  minute: number;
  minutes: number;
}

/** The signals each fault shows in (a traffic drop raises the cost per 1k too: the same replicas are held). */
const FAULT_SIGNALS: Record<FaultKind, SignalName[]> = {
  'slowed-replica': ['latencyP95Ms'],
  'error-burst': ['errorRate'],
  'cost-jump': ['per1kUsd'],
  'slow-cold-start': ['coldStartMs'],
  'traffic-drop': ['requestRate', 'per1kUsd'],
};

/**
 * A seasonal deployment minute by minute: a diurnal request rate (trough 3/min, peak 120/min),
 * autoscaled replicas (one per 40 requests a minute, a floor of one), a latency p95 that grows with
 * load and is noisy and right-skewed when few requests make up a minute, rare errors (so the error rate
 * is mostly 0 with spikes at low traffic), and cold starts at night (scale to zero between requests).
 * Faults, when given, change what they would change in a real deployment:
 * - slowed-replica: one of the replicas is 3× slower, so the p95 rises (by more with fewer replicas);
 * - error-burst: 8% of requests fail;
 * - cost-jump: twice the replicas are held for the same traffic (a stuck scale-in, a bigger instance);
 * - slow-cold-start: replicas take 4× as long to start (a slow image pull);
 * - traffic-drop: 70% of the traffic stops arriving (an upstream outage).
 */
export function seasonalSignals(o: { seed: number; days: number; faults?: InjectedFault[] }): SignalTrace {
  const uniform = seededUniform(o.seed);
  const normal = gaussian(uniform);
  const start = Date.parse('2026-11-02T00:00:00Z');
  const minutes = o.days * MINUTES_PER_DAY;
  const signals = Object.fromEntries(SIGNALS.map((s) => [s, [] as Point[]])) as Record<SignalName, Point[]>;
  const faults = Object.fromEntries(SIGNALS.map((s) => [s, [] as FaultWindow[]])) as Record<SignalName, FaultWindow[]>;
  const active = (kind: FaultKind, m: number) =>
    (o.faults ?? []).some((f) => f.kind === kind && m >= f.minute && m < f.minute + f.minutes);
  for (const f of o.faults ?? [])
    for (const signal of FAULT_SIGNALS[f.kind])
      faults[signal].push({ from: start + f.minute * 60_000, to: start + (f.minute + f.minutes - 1) * 60_000 });
  for (const list of Object.values(faults)) list.sort((a, b) => a.from - b.from);
  const usdPerReplicaMinute = 0.096 / 60;
  for (let m = 0; m < minutes; m++) {
    const t = start + m * 60_000;
    const expected = diurnalRate(m % MINUTES_PER_DAY, 3, 120) * (active('traffic-drop', m) ? 0.3 : 1);
    const n = poisson(uniform, normal, expected);
    let replicas = Math.max(1, Math.ceil(expected / 40));
    if (active('cost-jump', m)) replicas *= 2;
    // p95 of n lognormal latencies around 40 ms × load: its spread shrinks as n grows.
    const load = expected / 120;
    const sigma = 0.5 / Math.sqrt(Math.max(n, 1)) + 0.04;
    let p95 = 40 * (1 + 0.4 * load) * Math.exp(0.25 + sigma * normal());
    if (active('slowed-replica', m)) p95 *= 1 + 2 / replicas;
    const errorProbability = active('error-burst', m) ? 0.08 : 0.001;
    let errors = 0;
    for (let i = 0; i < n; i++) if (uniform() < errorProbability) errors++;
    // Cold starts happen when the deployment scaled to zero: likely at night, rare by day.
    const coldStarts = poisson(uniform, normal, expected < 10 ? 0.3 : 0.02);
    const coldMs = 900 * Math.exp(0.2 * normal()) * (active('slow-cold-start', m) ? 4 : 1);
    signals.requestRate.push({ t, v: n });
    signals.latencyP95Ms.push({ t, v: p95 });
    signals.errorRate.push({ t, v: n > 0 ? errors / n : 0 });
    signals.coldStartRate.push({ t, v: coldStarts });
    // The duration exists only in minutes that had a cold start; the detector sees those.
    if (coldStarts > 0) signals.coldStartMs.push({ t, v: coldMs });
    // Cost per 1k is undefined in a minute without requests.
    if (n > 0) signals.per1kUsd.push({ t, v: ((replicas * usdPerReplicaMinute) / n) * 1000 });
  }
  return { start, minutes, signals, faults };
}
