/**
 * The anomaly detector on generated traces with injected faults (a slowed replica, an error burst, a
 * cost jump, slow cold starts, a traffic drop) and on a clean seasonal trace, against the plain
 * z > 3 for 5 minutes rule on the same traces.
 *
 * Floors asserted (measured values at seed 7 in the comment of each):
 * - every signal: precision ≥ 0.9 and no false alarm on the clean trace;
 * - latency p95, error rate, cold-start rate, request rate: recall ≥ 0.7; cost per 1k and cold-start
 *   duration (sparse: only minutes with a cold start have one): recall ≥ 0.6;
 * - the robust detector's total recall beats the plain rule's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { baselineAt, initialAlertState, SIGNAL_SETTINGS, stepAlert } from '../../lib/analytics/anomaly';
import { measureDetection } from '../../lib/analytics/detectionBench';

describe('anomaly detection', () => {
  test('precision, recall and false alarms on the fault and clean traces, against z > 3 for 5 minutes', () => {
    const reports = measureDetection(7, 8);
    let robustFound = 0;
    let plainFound = 0;
    for (const r of reports) {
      const line = `${r.signal}: robust ${JSON.stringify(r.robust)} plain ${JSON.stringify(r.plainZ)}`;
      assert.ok(r.robust.precision >= 0.9, line);
      assert.equal(r.robustCleanFalseAlarmsPerDay, 0, line);
      const floor = r.signal === 'per1kUsd' || r.signal === 'coldStartMs' ? 0.6 : 0.7;
      if (r.robust.faults > 0) assert.ok(r.robust.recall >= floor, line);
      robustFound += r.robust.faultsDetected;
      plainFound += r.plainZ.faultsDetected;
    }
    assert.ok(robustFound > plainFound, `robust found ${robustFound} faults, the plain rule ${plainFound}`);
  });

  test('the seasonal baseline takes over from the rolling one once two days of history exist', () => {
    const s = SIGNAL_SETTINGS.latencyP95Ms;
    const points = Array.from({ length: 3 * 1440 }, (_, m) => ({ t: m * 60_000, v: m % 1440 < 720 ? 10 : 100 }));
    // Day 1, 13:00: the last hour was all 100.
    assert.equal(baselineAt(points, 1440 * 60_000 + 13 * 3_600_000, s).kind, 'rolling');
    // Day 2, 06:00: the same time on days 0 and 1 was 10, although the hour before was too.
    const b = baselineAt(points, 2 * 1440 * 60_000 + 6 * 3_600_000, s);
    assert.equal(b.kind, 'seasonal');
    assert.equal(b.median, 10);
  });

  test('an anomaly opens after the minimum duration and clears after a calm run', () => {
    const s = SIGNAL_SETTINGS.errorRate;
    let state = initialAlertState();
    const scores = [5, 5, 5, 5, 1, 5, 5, 5, 5, 5, 6, 3, 1, 1, 1];
    const events: string[] = [];
    scores.forEach((score, m) => {
      const step = stepAlert(state, m * 60_000, score, 0, 0, s);
      state = step.state;
      if (step.transition) events.push(`${step.transition.kind}@${m}`);
    });
    // Four high minutes and a dip do not open; five do (minute 9); three calm minutes clear (minute 14).
    assert.deepEqual(events, ['opened@9', 'cleared@14']);
  });
});
