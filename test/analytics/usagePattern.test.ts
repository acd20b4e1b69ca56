/** Usage pattern classification on generated traces of each kind, with the peak, trough and idle gaps. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { burstyRequests, diurnalRequests, idleRequests, steadyRequests } from '../../lib/analytics/traces';
import { classifyUsage } from '../../lib/analytics/usagePattern';

describe('usage pattern', () => {
  test('a diurnal week is diurnal, peaking in the afternoon and lowest at night', () => {
    const p = classifyUsage(diurnalRequests({ seed: 1, days: 7, trough: 2, peak: 60 }));
    assert.equal(p.kind, 'diurnal', p.evidence);
    const peakHour = new Date(p.peak.at).getUTCHours();
    const troughHour = new Date(p.trough.at).getUTCHours();
    assert.ok(peakHour >= 13 && peakHour <= 19, `peak at ${peakHour}h`);
    assert.ok(troughHour >= 2 && troughHour <= 6, `trough at ${troughHour}h`);
    assert.ok(p.dailyAutocorrelation !== null && p.dailyAutocorrelation > 0.8);
  });

  test('one diurnal day is diurnal too (a smooth hourly profile)', () => {
    assert.equal(classifyUsage(diurnalRequests({ seed: 2, days: 1, trough: 1, peak: 40 })).kind, 'diurnal');
  });

  test('a constant rate is steady, spikes on a low base are bursty', () => {
    const steady = classifyUsage(steadyRequests({ seed: 3, days: 2, rate: 30 }));
    assert.equal(steady.kind, 'steady', steady.evidence);
    assert.equal(steady.idleGaps.length, 0);
    const bursty = classifyUsage(
      burstyRequests({ seed: 4, days: 2, base: 0.5, burstRate: 80, burstMinutes: 5, everyMinutes: 120 }),
    );
    assert.equal(bursty.kind, 'bursty', bursty.evidence);
    assert.ok(bursty.peak.perMinute > 50);
    assert.ok(bursty.idleGaps.length > 0, 'half a request a minute leaves gaps of 5 minutes and more');
  });

  test('a few requests a day is idle, with the gaps between them', () => {
    const p = classifyUsage(idleRequests({ seed: 5, days: 3, perDay: 12 }));
    assert.equal(p.kind, 'idle', p.evidence);
    assert.ok(p.longestIdleGapMs >= 60 * 60_000, 'hours without a request');
    const covered = p.idleGaps.reduce((a, g) => a + g.durationMs, 0);
    assert.ok(covered > 0.9 * 3 * 86_400_000);
  });

  test('idle gaps are exact on a scripted series', () => {
    const counts = [1, 0, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0];
    const p = classifyUsage({ start: 0, stepMs: 60_000, counts });
    assert.deepEqual(p.idleGaps, [
      { start: 60_000, durationMs: 5 * 60_000 },
      { start: 10 * 60_000, durationMs: 6 * 60_000 },
    ]);
    assert.equal(p.peak.perMinute, 3);
  });
});
