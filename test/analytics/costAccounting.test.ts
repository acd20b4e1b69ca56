/**
 * Cost accounting on a scripted scenario: the replica-seconds are counted by hand below, and the
 * dollar figures follow from them and the unit prices.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  HOURS_PER_MONTH,
  heldSecondsBetween,
  type IntervalCost,
  intervalCost,
  type ReplicaObservation,
  summarizeCost,
  unitPrices,
} from '../../lib/analytics/costAccounting';
import { resourcePrice } from '../../lib/analytics/resourcePrice';
import type { PriceCatalog } from '../../lib/cost/catalog/types';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const s = (sec: number) => T0 + sec * 1000;
const price = { usdPerHour: 0.36, vcpus: 4, memoryGiB: 16, source: 'test machine' };
const request = { cpus: 1, memoryGiB: 2 };

/*
 * t=0    A (v1, started at −100 s)                          → A 100 s (held since its start)
 * t=60   A, B (v1, started at 30 s)                         → A 60, B 30
 * t=120  A, C (v2 canary, started at 100 s); B gone         → A 60, C 20, B 30 (gone: midpoint 90 s)
 * t=180  none: the monitor hibernated at 125 s              → A 5, C 5
 * t=240  none                                               → 0
 * v1: 100 + 60 + 30 + 60 + 30 + 5 = 285; v2: 20 + 5 = 25; total 310 replica-seconds.
 */
const observations: ReplicaObservation[] = [
  { at: s(0), replicas: [{ key: 'A', revision: 'v1', startedAt: s(-100) }] },
  {
    at: s(60),
    replicas: [
      { key: 'A', revision: 'v1', startedAt: s(-100) },
      { key: 'B', revision: 'v1', startedAt: s(30) },
    ],
  },
  {
    at: s(120),
    replicas: [
      { key: 'A', revision: 'v1', startedAt: s(-100) },
      { key: 'C', revision: 'v2', startedAt: s(100) },
    ],
  },
  { at: s(180), replicas: [] },
  { at: s(240), replicas: [] },
];
const stoppedAt = [undefined, undefined, undefined, s(125), undefined];
const traffic = [
  { requests: 0, busySeconds: 0, coldStarts: 0, coldStartMs: null },
  { requests: 600, busySeconds: 30, coldStarts: 0, coldStartMs: null },
  { requests: 400, busySeconds: 20, coldStarts: 0, coldStartMs: null },
  { requests: 5, busySeconds: 1, coldStarts: 0, coldStartMs: null },
  { requests: 0, busySeconds: 0, coldStarts: 1, coldStartMs: 850 },
];

function intervals(): IntervalCost[] {
  return observations.map((o, i) =>
    intervalCost({
      from: i === 0 ? s(-100) : observations[i - 1].at,
      to: o.at,
      heldSecondsByRevision: heldSecondsBetween(observations[i - 1], o, stoppedAt[i]),
      request,
      price,
      errors: 0,
      ...traffic[i],
    }),
  );
}

describe('cost accounting', () => {
  test('replica-seconds per interval and per revision match the hand count', () => {
    const got = intervals();
    assert.deepEqual(
      got.map((i) => i.replicaSeconds),
      [100, 90, 110, 10, 0],
    );
    assert.deepEqual(Object.fromEntries(heldSecondsBetween(observations[1], observations[2])), { v1: 90, v2: 20 });
    const summary = summarizeCost(got);
    assert.ok(summary);
    assert.equal(summary.replicaSeconds, 310);
    assert.equal(summary.byRevision.v1.replicaSeconds, 285);
    assert.equal(summary.byRevision.v2.replicaSeconds, 25);
  });

  test('unit prices split the machine price in OpenCost proportions and add back up', () => {
    const p = unitPrices(price);
    assert.ok(Math.abs(p.usdPerVcpuHour * 4 + p.usdPerGiBHour * 16 - 0.36) < 1e-12);
    assert.ok(Math.abs(p.usdPerVcpuHour / p.usdPerGiBHour - 0.031611 / 0.004237) < 1e-9);
  });

  test('allocation is max(request, usage), idle is the allocation that did no work', () => {
    const p = unitPrices(price);
    const [, second] = intervals();
    // 90 replica-seconds × 1 CPU requested, 30 CPU-seconds used; memory 90 × 2 GiB-seconds.
    const allocated = (90 * p.usdPerVcpuHour + 180 * p.usdPerGiBHour) / 3600;
    assert.ok(Math.abs(second.allocatedUsd - allocated) < 1e-15);
    assert.ok(Math.abs(second.idleUsd - (60 * p.usdPerVcpuHour) / 3600) < 1e-15);
    assert.ok(second.per1kUsd !== null && Math.abs(second.per1kUsd - (allocated / 600) * 1000) < 1e-15);
    // Usage above the request (busy 200 s in 90 replica-seconds): allocation follows usage, no idle.
    const over = intervalCost({
      from: s(0),
      to: s(60),
      heldSecondsByRevision: new Map([['v1', 90]]),
      request,
      price,
      requests: 10,
      errors: 0,
      busySeconds: 200,
      coldStarts: 0,
      coldStartMs: null,
    });
    assert.ok(Math.abs(over.allocatedUsd - (200 * p.usdPerVcpuHour + 180 * p.usdPerGiBHour) / 3600) < 1e-15);
    assert.equal(over.idleUsd, 0);
  });

  test('per day, per month, per 1k and cold starts over the window', () => {
    const got = intervals();
    const summary = summarizeCost(got);
    assert.ok(summary);
    const p = unitPrices(price);
    const busy = 30 + 20 + 1;
    const total = (310 * p.usdPerVcpuHour + 620 * p.usdPerGiBHour) / 3600;
    assert.ok(Math.abs(summary.allocatedUsd - total) < 1e-12);
    assert.ok(Math.abs(summary.idleUsd - ((310 - busy) * p.usdPerVcpuHour) / 3600) < 1e-12);
    assert.equal(summary.requests, 1005);
    // The window is 340 s (from A's start at −100 s to 240 s).
    assert.ok(Math.abs(summary.perDayUsd - (total / 340) * 86_400) < 1e-12);
    assert.ok(Math.abs(summary.projectedMonthUsd - (summary.perDayUsd / 24) * HOURS_PER_MONTH) < 1e-12);
    assert.ok(summary.per1kUsd !== null && Math.abs(summary.per1kUsd - (total / 1005) * 1000) < 1e-12);
    assert.equal(summary.coldStarts, 1);
    assert.equal(summary.coldStartMeanMs, 850);
    assert.equal(summarizeCost([]), null);
  });

  test('a replica is priced at its catalog instance, else at the local machine', () => {
    const catalog: PriceCatalog = {
      schemaVersion: 1,
      snapshotDate: '2026-11-01',
      contentHash: 'x',
      serverless: [],
      egress: [],
      instances: [
        {
          provider: 'aws',
          region: 'us-east-1',
          instanceType: 'c7g.large',
          family: 'compute-optimized',
          vcpus: 2,
          memoryGiB: 4,
          arch: 'arm64',
          onDemandUsdPerHour: 0.0725,
          spotUsdPerHour: { 'us-east-1a': 0.03 },
          source: { url: 'https://example.test', retrieved: '2026-11-01' },
        },
      ],
    };
    const local = { usdPerHour: 0.096, vcpus: 2, memoryGiB: 8 };
    const placement = { provider: 'aws' as const, region: 'us-east-1', instanceType: 'c7g.large' };
    assert.equal(resourcePrice(placement, catalog, local).usdPerHour, 0.0725);
    assert.equal(resourcePrice({ ...placement, spotZone: 'us-east-1a' }, catalog, local).usdPerHour, 0.03);
    assert.equal(resourcePrice({ ...placement, instanceType: 'm9.huge' }, catalog, local).usdPerHour, 0.096);
    assert.equal(resourcePrice(undefined, undefined, local).vcpus, 2);
  });
});
