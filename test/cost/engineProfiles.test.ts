/** Workload profiles and the CPU speed table of the cost engine. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cpuSpeed, measuringMachineFactor, parseCalibration, seriesOf } from '../../lib/cost/engine/cpuSpeed';
import {
  meanRps,
  ProfileError,
  parseProfile,
  parseRate,
  peakRps,
  requestsPerMonth,
  traceProfile,
} from '../../lib/cost/engine/workloadProfile';
import { seededUniform } from '../../lib/seededRandom';

describe('workload profiles', () => {
  test('rates in rps, rpm and rph', () => {
    assert.equal(parseRate('50rps'), 50);
    assert.equal(parseRate('300rpm'), 5);
    assert.equal(parseRate('7200rph'), 2);
    assert.equal(parseRate('12'), 12);
    assert.throws(() => parseRate('fast'), ProfileError);
  });

  test('steady: the same rate every minute of the day', () => {
    const p = parseProfile('50rps');
    assert.equal(p.kind, 'steady');
    assert.equal(p.perMinuteRps.length, 1440);
    assert.equal(peakRps(p), 50);
    assert.equal(meanRps(p), 50);
    assert.equal(requestsPerMonth(p), 50 * 730 * 3600);
  });

  test('diurnal: the peak within peak-hours, the trough outside', () => {
    const p = parseProfile('peak=80rps,trough=2rps,peak-hours=9-18');
    assert.equal(p.perMinuteRps[9 * 60], 80);
    assert.equal(p.perMinuteRps[18 * 60 - 1], 80);
    assert.equal(p.perMinuteRps[18 * 60], 2);
    assert.equal(p.perMinuteRps[8 * 60 + 59], 2);
    assert.equal(meanRps(p), (9 * 80 + 15 * 2) / 24);
    // A span across midnight.
    const night = parseProfile('peak=10rps,peak-hours=22-2');
    assert.equal(night.perMinuteRps[23 * 60], 10);
    assert.equal(night.perMinuteRps[60], 10);
    assert.equal(night.perMinuteRps[12 * 60], 0);
    assert.throws(() => parseProfile('peak=10rps,peakhours=1-2'), /unknown key "peakhours"/);
    assert.throws(() => parseProfile('trough=1rps'), /needs peak/);
  });

  test('bursty: bursts of the given length, idle between, placed by the random source given', () => {
    const spec = 'bursty:burst=120rps,bursts=6,burst-minutes=10';
    const a = parseProfile(spec, { random: seededUniform(7) });
    const b = parseProfile(spec, { random: seededUniform(7) });
    const c = parseProfile(spec, { random: seededUniform(8) });
    assert.deepEqual(a.perMinuteRps, b.perMinuteRps, 'same seed, same day');
    assert.notDeepEqual(a.perMinuteRps, c.perMinuteRps);
    assert.equal(a.perMinuteRps.filter((r) => r === 120).length, 60);
    assert.equal(a.perMinuteRps.filter((r) => r === 0).length, 1380);
    // Bursts stay within their 240-minute slots: never merged into one.
    for (let s = 0; s < 6; s++) {
      const slot = a.perMinuteRps.slice(s * 240, (s + 1) * 240);
      assert.equal(slot.filter((r) => r > 0).length, 10);
    }
    assert.throws(() => parseProfile('bursty:bursts=2,burst-minutes=900'), /burst-minutes/);
  });

  test('trace: per-minute counts (or minute,count), repeated to a day, a header skipped', () => {
    const p = traceProfile('minute,count\n0,60\n1,120\n# a comment\n2,0\n');
    assert.equal(p.perMinuteRps.length, 1440);
    assert.deepEqual(p.perMinuteRps.slice(0, 6), [1, 2, 0, 1, 2, 0]);
    const viaSpec = parseProfile('trace:t.csv', { readTrace: (f) => (f === 't.csv' ? '30\n90\n' : '') });
    assert.deepEqual(viaSpec.perMinuteRps.slice(0, 2), [0.5, 1.5]);
    assert.throws(() => traceProfile('1\n-3\n'), /line 2/);
    assert.throws(() => traceProfile(''), /no request counts/);
    // Longer than a day: padded to whole days.
    assert.equal(traceProfile(Array(1500).fill('6').join('\n')).perMinuteRps.length, 2880);
  });
});

describe('CPU speed factors', () => {
  test('series names per provider', () => {
    assert.equal(seriesOf('aws', 'm7g.large'), 'm7g');
    assert.equal(seriesOf('gcp', 'c3-standard-4'), 'c3');
    assert.equal(seriesOf('gcp', 't2a-standard-2'), 't2a');
    assert.equal(seriesOf('azure', 'Standard_D2ps_v5'), 'Dps_v5');
    assert.equal(seriesOf('azure', 'Standard_F4s_v2'), 'Fs_v2');
  });

  test('the table, an unknown family, and a calibration that overrides both', () => {
    const m7g = { provider: 'aws', instanceType: 'm7g.large', arch: 'arm64' } as const;
    assert.deepEqual(cpuSpeed(m7g), { factor: 1.0, basis: 'estimate', key: 'm7g' });
    assert.equal(cpuSpeed({ provider: 'aws', instanceType: 'z9q.large', arch: 'x86_64' }).basis, 'default');
    const cal = parseCalibration('m7g=1.3,this=0.8');
    assert.deepEqual(cpuSpeed(m7g, cal), { factor: 1.3, basis: 'calibrated', key: 'm7g' });
    assert.equal(cpuSpeed(m7g, { 'm7g.large': 2 }).factor, 2, 'an exact type beats its series');
    assert.equal(measuringMachineFactor(cal), 0.8);
    assert.equal(measuringMachineFactor({}), 1);
    assert.throws(() => parseCalibration('m7g=fast'), /series=factor/);
  });
});
