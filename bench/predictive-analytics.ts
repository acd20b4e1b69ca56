/**
 * The monitor's analytics measured on generated traces, in one run: the anomaly detector (median/MAD
 * against a seasonal or rolling baseline, 5 minutes above 4 to open) next to the plain z > 3 for 5
 * minutes rule, on a trace with injected faults (precision, recall, mean delay) and on a clean seasonal
 * trace (false alarms per day); and the request-rate forecasters (seasonal naive, smoothed seasonal,
 * Holt-Winters with a daily season) at 5 and 15 minutes ahead on a diurnal week and a diurnal week with
 * a daily burst. No service needed.
 *
 *   npx tsx bench/predictive-analytics.ts [--seed 7] [--days 10]
 */
import { parseArgs } from 'node:util';
import { measureDetection } from '../lib/analytics/detectionBench';
import { forecastErrors, HoltWinters, seasonalNaive, smoothedSeasonal } from '../lib/analytics/forecast';
import { diurnalRequests, diurnalWithBursts } from '../lib/analytics/traces';

const { values } = parseArgs({
  options: { seed: { type: 'string', default: '7' }, days: { type: 'string', default: '10' } },
});
const seed = Number(values.seed);
const days = Number(values.days);

console.log(`Anomaly detection, ${days} days per trace (faults from day 3), seed ${seed}`);
console.log('signal          | robust P   R    FP  delay  clean FA/day | z>3x5 P   R    FP  clean FA/day');
for (const r of measureDetection(seed, days)) {
  const f = (v: number) => v.toFixed(2).padStart(4);
  console.log(
    `${r.signal.padEnd(15)} |        ${f(r.robust.precision)} ${f(r.robust.recall)} ${String(r.robust.falsePositives).padStart(3)} ` +
      `${(r.robust.meanDelayMinutes?.toFixed(1) ?? '-').padStart(5)}  ${f(r.robustCleanFalseAlarmsPerDay)}         |       ` +
      `${f(r.plainZ.precision)} ${f(r.plainZ.recall)} ${String(r.plainZ.falsePositives).padStart(3)}  ${f(r.plainZCleanFalseAlarmsPerDay)}` +
      `   (${r.robust.faults} faults)`,
  );
}

const traces = [
  {
    name: 'diurnal (trough 2, peak 120/min)',
    counts: diurnalRequests({ seed: seed + 4, days: 7, trough: 2, peak: 120 }).counts,
  },
  {
    name: 'diurnal + daily burst at 09:00 (+200/min for 20 min)',
    counts: diurnalWithBursts({
      seed: seed + 5,
      days: 7,
      trough: 0,
      peak: 60,
      bursts: [{ minute: 9 * 60, minutes: 20, rate: 200 }],
    }).counts,
  },
];
for (const t of traces) {
  console.log(`\nForecast errors, ${t.name}, days 3–7`);
  console.log('horizon | forecaster                                              | MAE    | MAE/mean | under by >25%');
  for (const h of [5, 15]) {
    for (const e of forecastErrors(t.counts, [seasonalNaive(), smoothedSeasonal(), new HoltWinters()], h, 2 * 1440)) {
      console.log(
        `${String(h).padStart(4)} min | ${e.forecaster.padEnd(55)} | ${e.mae.toFixed(2).padStart(6)} | ${(e.relativeMae * 100).toFixed(1).padStart(6)}%  | ${(e.underForecastShare * 100).toFixed(1)}%`,
      );
    }
  }
}
