/**
 * Forecasts of the per-minute request rate from its history, for the predictive floor.
 *
 * - Seasonal naive: the rate at the same minute a season (a day) earlier.
 * - Smoothed seasonal: the mean, over the last `days` days, of a ±`halfWidth`-minute window around the
 *   same minute of day: seasonal naive without its Poisson noise.
 * - Holt-Winters, additive, with a daily season of 1440 minutes: level, trend and a seasonal term per
 *   minute of day. The seasonal terms start from the first day's smoothed profile; each is updated once
 *   a day, so γ is high.
 *
 * They are compared on generated traces by `forecastErrors` (mean absolute error, and MAE as a share of
 * the mean rate), which the test and the bench print; the predictive floor uses the best one measured.
 * Pure: histories are arrays of per-minute counts, index 0 the oldest.
 */

export const DAY_MINUTES = 1440;

export interface Forecaster {
  readonly name: string;
  /** Forecast of minute `i + h` given the counts up to and including minute `i`. */
  forecast(history: number[], i: number, h: number): number;
}

export const seasonalNaive = (season = DAY_MINUTES): Forecaster => ({
  name: 'seasonal naive',
  forecast(history, i, h) {
    const j = i + h - season * Math.ceil(h / season);
    return j >= 0 ? history[j] : history[i];
  },
});

export const smoothedSeasonal = (days = 3, halfWidth = 7, season = DAY_MINUTES): Forecaster => ({
  name: `smoothed seasonal (${days} days, ±${halfWidth} min)`,
  forecast(history, i, h) {
    let s = 0;
    let n = 0;
    for (let d = 1; d <= days; d++) {
      const centre = i + h - d * season;
      for (let j = centre - halfWidth; j <= centre + halfWidth; j++) {
        if (j >= 0 && j <= i) {
          s += history[j];
          n++;
        }
      }
    }
    return n ? s / n : history[i];
  },
});

export interface HoltWintersParams {
  alpha: number;
  beta: number;
  gamma: number;
  season: number;
}

/** Additive Holt-Winters run over the whole history once, then read at any point (states are kept). */
export class HoltWinters implements Forecaster {
  readonly name: string;
  private levels: number[] = [];
  private trends: number[] = [];
  private seasonals: number[] = [];
  private fitted: number[] | null = null;

  constructor(readonly p: HoltWintersParams = { alpha: 0.05, beta: 0.0005, gamma: 0.4, season: DAY_MINUTES }) {
    this.name = `Holt-Winters (α ${p.alpha}, β ${p.beta}, γ ${p.gamma}, season ${p.season} min)`;
  }

  /** Fits on `history` (needs one full season); later calls with a longer history refit. */
  fit(history: number[]): void {
    const m = this.p.season;
    if (history.length < m) throw new Error(`Holt-Winters needs a full season (${m} points) of history`);
    const first = history.slice(0, m);
    const mean = first.reduce((a, b) => a + b, 0) / m;
    // The first season's profile, smoothed over ±15 minutes, minus its mean.
    const init = first.map((_, i) => {
      let s = 0;
      let n = 0;
      for (let j = i - 15; j <= i + 15; j++) {
        s += first[(j + m) % m];
        n++;
      }
      return s / n - mean;
    });
    const { alpha, beta, gamma } = this.p;
    this.levels = new Array(history.length);
    this.trends = new Array(history.length);
    this.seasonals = new Array(history.length);
    let level = mean;
    let trend = 0;
    for (let t = 0; t < history.length; t++) {
      const s = t < m ? init[t] : this.seasonals[t - m];
      const y = history[t];
      const nextLevel = alpha * (y - s) + (1 - alpha) * (level + trend);
      trend = beta * (nextLevel - level) + (1 - beta) * trend;
      level = nextLevel;
      this.levels[t] = level;
      this.trends[t] = trend;
      this.seasonals[t] = gamma * (y - level) + (1 - gamma) * s;
    }
    this.fitted = history;
  }

  forecast(history: number[], i: number, h: number): number {
    if (this.fitted !== history || this.levels.length <= i) this.fit(history);
    const m = this.p.season;
    if (i < m) return history[i];
    const k = Math.floor((h - 1) / m) + 1;
    const seasonal = this.seasonals[i + h - k * m];
    return Math.max(0, this.levels[i] + h * this.trends[i] + seasonal);
  }
}

export interface ForecastError {
  forecaster: string;
  horizonMinutes: number;
  points: number;
  mae: number;
  /** MAE over the mean actual rate. */
  relativeMae: number;
  /** Share of forecasts that fell short of the actual rate by more than 25% (an under-forecast is what costs cold starts). */
  underForecastShare: number;
}

/** Errors of each forecaster at `horizon` minutes ahead, over the minutes from `fromMinute` on. */
export function forecastErrors(
  counts: number[],
  forecasters: Forecaster[],
  horizon: number,
  fromMinute: number,
): ForecastError[] {
  return forecasters.map((f) => {
    let abs = 0;
    let under = 0;
    let actual = 0;
    let n = 0;
    for (let i = fromMinute; i + horizon < counts.length; i++) {
      const predicted = f.forecast(counts, i, horizon);
      const y = counts[i + horizon];
      abs += Math.abs(predicted - y);
      if (predicted < 0.75 * y) under++;
      actual += y;
      n++;
    }
    return {
      forecaster: f.name,
      horizonMinutes: horizon,
      points: n,
      mae: n ? abs / n : 0,
      relativeMae: actual > 0 ? abs / actual : 0,
      underForecastShare: n ? under / n : 0,
    };
  });
}
