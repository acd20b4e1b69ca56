/**
 * Usage pattern of a deployment from its per-minute request counts: idle, diurnal, bursty or steady,
 * with the peak, the trough and the idle gaps (runs of minutes without a request). It feeds the
 * recommendations (hibernate sooner or later, right-size, always-on or not) and the predictive floor.
 *
 * The tests, in order:
 * - idle: fewer than 5% of the minutes saw a request;
 * - diurnal: at least a day of history, and the hour-of-day profile explains most of the variance of
 *   the hourly rate (with two days or more, the rate also correlates with itself a day earlier);
 * - bursty: the per-minute rate varies a lot (coefficient of variation above 1) and its peak is many
 *   times its median: short spikes on a low base;
 * - steady: everything else.
 */

export type UsagePatternKind = 'idle' | 'diurnal' | 'bursty' | 'steady';

export interface RequestSeries {
  /** Start of the first minute, ms since the epoch. */
  start: number;
  stepMs: number;
  /** Requests in each step. */
  counts: number[];
}

export interface IdleGap {
  start: number;
  durationMs: number;
}

export interface UsagePattern {
  kind: UsagePatternKind;
  /** Why this kind, in figures. */
  evidence: string;
  minutes: number;
  totalRequests: number;
  /** Highest per-minute rate and when. */
  peak: { at: number; perMinute: number };
  /** Lowest hourly mean rate (per minute) and the hour it starts. */
  trough: { at: number; perMinute: number };
  meanPerMinute: number;
  coefficientOfVariation: number;
  /** Share of the hourly variance the hour-of-day profile explains (null with less than a day). */
  dailyProfileR2: number | null;
  /** Correlation of the hourly rate with itself a day earlier (null with less than two days). */
  dailyAutocorrelation: number | null;
  /** Runs of steps with no request, at least `minIdleGapMs` long, oldest first. */
  idleGaps: IdleGap[];
  longestIdleGapMs: number;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export function classifyUsage(series: RequestSeries, minIdleGapMs = 5 * 60_000): UsagePattern {
  const { counts, start, stepMs } = series;
  const n = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  const mean = n ? total / n : 0;
  const sd = Math.sqrt(n ? counts.reduce((a, c) => a + (c - mean) ** 2, 0) / n : 0);
  const cv = mean > 0 ? sd / mean : 0;
  let peakIndex = 0;
  for (let i = 1; i < n; i++) if (counts[i] > counts[peakIndex]) peakIndex = i;
  const perMinute = (c: number) => (c * 60_000) / stepMs;

  const hourly = hourlyMeans(series);
  let troughIndex = 0;
  for (let i = 1; i < hourly.length; i++) if (hourly[i] < hourly[troughIndex]) troughIndex = i;
  const spanMs = n * stepMs;
  const r2 = spanMs >= DAY_MS && hourly.length >= 24 ? profileR2(hourly, start) : null;
  const acf = spanMs >= 2 * DAY_MS ? autocorrelation(hourly, 24) : null;

  const idleGaps = gapsOf(series, minIdleGapMs);
  const activeShare = n ? counts.filter((c) => c > 0).length / n : 0;
  const median = quantile(counts, 0.5);
  const peakPerMinute = n ? perMinute(counts[peakIndex]) : 0;

  let kind: UsagePatternKind;
  let evidence: string;
  if (activeShare < 0.05) {
    kind = 'idle';
    evidence = `${(activeShare * 100).toFixed(1)}% of minutes saw a request`;
  } else if (r2 !== null && r2 >= 0.6 && (acf === null || acf >= 0.5)) {
    kind = 'diurnal';
    evidence =
      `the hour of day explains ${(r2 * 100).toFixed(0)}% of the hourly variance` +
      (acf !== null ? `, day-to-day correlation ${acf.toFixed(2)}` : '');
  } else if (cv > 1 && counts[peakIndex] >= 5 * Math.max(median, 1)) {
    kind = 'bursty';
    evidence = `coefficient of variation ${cv.toFixed(2)}, peak ${peakPerMinute.toFixed(0)}/min against a median of ${perMinute(median).toFixed(0)}/min`;
  } else {
    kind = 'steady';
    evidence = `coefficient of variation ${cv.toFixed(2)}`;
  }

  return {
    kind,
    evidence,
    minutes: (n * stepMs) / 60_000,
    totalRequests: total,
    peak: { at: start + peakIndex * stepMs, perMinute: peakPerMinute },
    trough: { at: start + troughIndex * HOUR_MS, perMinute: hourly.length ? hourly[troughIndex] : 0 },
    meanPerMinute: perMinute(mean),
    coefficientOfVariation: cv,
    dailyProfileR2: r2,
    dailyAutocorrelation: acf,
    idleGaps,
    longestIdleGapMs: idleGaps.reduce((m, g) => Math.max(m, g.durationMs), 0),
  };
}

/** Mean requests per minute in each whole hour from the series' start. */
function hourlyMeans(series: RequestSeries): number[] {
  const perHour = Math.max(1, Math.round(HOUR_MS / series.stepMs));
  const out: number[] = [];
  for (let i = 0; i + perHour <= series.counts.length; i += perHour) {
    let s = 0;
    for (let j = i; j < i + perHour; j++) s += series.counts[j];
    out.push((s / perHour) * (60_000 / series.stepMs));
  }
  return out;
}

/** R² of the hourly rate against its hour-of-day means. */
function profileR2(hourly: number[], start: number): number {
  const startHour = Math.floor((start % DAY_MS) / HOUR_MS);
  const sums = new Array(24).fill(0);
  const counts = new Array(24).fill(0);
  hourly.forEach((v, i) => {
    const h = (startHour + i) % 24;
    sums[h] += v;
    counts[h]++;
  });
  const mean = hourly.reduce((a, b) => a + b, 0) / hourly.length;
  let total = 0;
  let residual = 0;
  hourly.forEach((v, i) => {
    const h = (startHour + i) % 24;
    total += (v - mean) ** 2;
    residual += (v - sums[h] / counts[h]) ** 2;
  });
  // With one day each hour is its own mean (R² = 1): require the profile to be smooth too, comparing
  // against the 3-hour moving average, which a random hourly rate does not follow.
  if (hourly.length < 48) {
    residual = 0;
    for (let i = 0; i < hourly.length; i++) {
      const w = [hourly[i - 1], hourly[i], hourly[i + 1]].filter((x) => x !== undefined);
      residual += (hourly[i] - w.reduce((a, b) => a + b, 0) / w.length) ** 2;
    }
  }
  return total > 0 ? Math.max(0, 1 - residual / total) : 0;
}

export function autocorrelation(values: number[], lag: number): number {
  const n = values.length;
  if (n <= lag + 1) return 0;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    den += (values[i] - mean) ** 2;
    if (i >= lag) num += (values[i] - mean) * (values[i - lag] - mean);
  }
  return den > 0 ? num / den : 0;
}

function gapsOf(series: RequestSeries, minGapMs: number): IdleGap[] {
  const gaps: IdleGap[] = [];
  let runStart = -1;
  const close = (end: number) => {
    if (runStart >= 0 && (end - runStart) * series.stepMs >= minGapMs)
      gaps.push({ start: series.start + runStart * series.stepMs, durationMs: (end - runStart) * series.stepMs });
    runStart = -1;
  };
  series.counts.forEach((c, i) => {
    if (c === 0 && runStart < 0) runStart = i;
    else if (c > 0) close(i);
  });
  close(series.counts.length);
  return gaps;
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  // A typed array sorts numerically without a comparator callback, several times faster.
  const sorted = Float64Array.from(values).sort();
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
