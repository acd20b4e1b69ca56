/**
 * The anomaly detector measured on generated traces: injected faults of every kind over a seasonal
 * week and a half, and a clean trace of the same shape for the false-alarm rate; the plain z > 3 for
 * 5 minutes rule runs on the same traces for comparison. Used by the test (which asserts floors) and by
 * bench/anomaly-detection.ts (which prints the table).
 */
import {
  type DetectionScore,
  plainZRule,
  robustSeasonalDetector,
  SIGNAL_SETTINGS,
  SIGNALS,
  type SignalName,
  scoreDetections,
} from './anomaly';
import { type InjectedFault, MINUTES_PER_DAY, seasonalSignals } from './traces';

/** Faults from day 3 on (two days of history first), at different times of day, per kind. */
export function faultSchedule(days: number): InjectedFault[] {
  const faults: InjectedFault[] = [];
  const at = (day: number, hour: number) => day * MINUTES_PER_DAY + hour * 60;
  for (let day = 3; day < days; day++) {
    faults.push({ kind: 'slowed-replica', minute: at(day, [10, 15, 21, 3, 13, 18, 8][day % 7]), minutes: 20 });
    faults.push({ kind: 'error-burst', minute: at(day, [12, 2, 17, 9, 20, 6, 14][day % 7]), minutes: 12 });
    faults.push({ kind: 'cost-jump', minute: at(day, [19, 11, 5, 16, 1, 22, 9][day % 7]), minutes: 60 });
    faults.push({ kind: 'traffic-drop', minute: at(day, [14, 8, 11, 18, 10, 16, 12][day % 7]), minutes: 20 });
    // Cold starts happen at night (scaled to zero), so a slow start can only show then.
    faults.push({ kind: 'slow-cold-start', minute: at(day, [1, 3, 2, 4, 0, 2, 3][day % 7]), minutes: 90 });
  }
  return faults;
}

export interface DetectionReport {
  signal: SignalName;
  robust: DetectionScore;
  plainZ: DetectionScore;
  /** False alarms per day on the clean trace. */
  robustCleanFalseAlarmsPerDay: number;
  plainZCleanFalseAlarmsPerDay: number;
}

export function measureDetection(seed = 7, days = 10): DetectionReport[] {
  const faulty = seasonalSignals({ seed, days, faults: faultSchedule(days) });
  const clean = seasonalSignals({ seed: seed + 1000, days });
  const warmup = faulty.start + 2 * 86_400_000;
  const span = { from: warmup, to: faulty.start + days * 86_400_000 };
  const after = (a: Array<{ openedAt: number }>) => a.filter((x) => x.openedAt >= warmup);
  return SIGNALS.filter((s) => faulty.faults[s].length > 0 || s === 'coldStartRate').map((signal) => {
    const robust = robustSeasonalDetector(signal);
    const plain = plainZRule(SIGNAL_SETTINGS[signal].direction);
    return {
      signal,
      robust: scoreDetections(after(robust(faulty.signals[signal])), faulty.faults[signal], span),
      plainZ: scoreDetections(after(plain(faulty.signals[signal])), faulty.faults[signal], span),
      robustCleanFalseAlarmsPerDay: scoreDetections(after(robust(clean.signals[signal])), [], span).falseAlarmsPerDay,
      plainZCleanFalseAlarmsPerDay: scoreDetections(after(plain(clean.signals[signal])), [], span).falseAlarmsPerDay,
    };
  });
}
