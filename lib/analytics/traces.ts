/**
 * Generated traces, seeded so every run sees the same numbers: per-minute request counts of the usage
 * patterns, and per-minute monitor signals (latency p95, error rate, cold starts, cost per 1k, request
 * rate) on a seasonal day with faults injected at known minutes. The anomaly detector, the forecasters
 * and the bench are measured on them.
 */
import { seededUniform } from '../seededRandom';
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
