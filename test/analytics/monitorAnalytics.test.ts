/**
 * The monitor's analytics glue that needs no service: per-replica counter increments across samples
 * (restarts included), the detector's signals of an interval, the alert text, and the /metrics gauges.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { alertText, counterDeltas, signalsOf } from '../../activities/monitor/cost';
import { costMetricsText } from '../../client/api/routes/analytics';
import { parsePrometheusText } from '../../lib/monitor/prometheus';

describe('monitor analytics', () => {
  test('counter increments per replica; a new or restarted replica counts from zero', () => {
    const before = { '11': { busySeconds: 10, errors: 2 }, '12': { busySeconds: 5, errors: 0 } };
    const after = {
      '11': { busySeconds: 12.5, errors: 3 },
      '13': { busySeconds: 1, errors: 1 },
      '12': { busySeconds: 1, errors: 0 },
    };
    assert.deepEqual(counterDeltas(before, after), { busySeconds: 2.5 + 1 + 1, errors: 1 + 1 });
  });

  test('signals of an interval: rates per minute, error share, duration only with cold starts', () => {
    const row = {
      from: 0,
      to: 30_000,
      replicaSeconds: 30,
      byRevision: {},
      allocatedUsd: 0.001,
      idleUsd: 0,
      requests: 60,
      errors: 3,
      busySeconds: 1,
      coldStarts: 0,
      coldStartMs: 900,
      per1kUsd: 0.0167,
      latencyP95Ms: 12,
      pricing: { price: { usdPerHour: 0.1, vcpus: 2, memoryGiB: 8, source: 't' }, request: { cpus: 1, memoryGiB: 1 } },
    };
    assert.deepEqual(signalsOf(row), {
      latencyP95Ms: 12,
      errorRate: 0.05,
      coldStartRate: 0,
      coldStartMs: null,
      per1kUsd: 0.0167,
      requestRate: 120,
    });
    assert.equal(signalsOf({ ...row, requests: 0 }).errorRate, null);
  });

  test('alert text says what, since when, against what usual value', () => {
    const text = alertText({
      deploymentId: 'mlp-v1',
      signal: 'latencyP95Ms',
      kind: 'opened',
      since: '2026-12-03T10:00:00.000Z',
      at: '2026-12-03T10:05:00.000Z',
      score: 7.25,
      value: 180,
      baseline: 42,
    });
    assert.match(
      text,
      /mlp-v1.*latency p95 \(ms\).*since 2026-12-03T10:00:00.000Z: 180 against a usual 42.0 \(score 7.3\)/,
    );
  });

  test('/metrics gauges parse as Prometheus text with the figures of the window', () => {
    const text = costMetricsText([
      {
        deploymentId: 'a-v1',
        allocatedUsd: 0.5,
        idleUsd: 0.1,
        requests: 1000,
        spanSeconds: 43_200,
        replicaSeconds: 43_200,
      },
      {
        deploymentId: 'b-v1',
        allocatedUsd: 0.2,
        idleUsd: 0.2,
        requests: 0,
        spanSeconds: 86_400,
        replicaSeconds: 86_400,
      },
    ]);
    const samples = parsePrometheusText(text);
    const get = (name: string, d: string) => samples.find((s) => s.name === name && s.labels.deployment === d)?.value;
    assert.equal(get('ferry_cost_per_1k_usd', 'a-v1'), 0.5);
    assert.equal(get('ferry_cost_per_1k_usd', 'b-v1'), undefined, 'no requests: no cost per 1k');
    assert.equal(get('ferry_cost_per_day_usd', 'a-v1'), 1);
    assert.equal(get('ferry_cost_idle_usd', 'b-v1'), 0.2);
    assert.match(text, /# TYPE ferry_cost_per_1k_usd gauge/);
  });
});
