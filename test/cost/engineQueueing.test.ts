/** The cost engine's queueing arithmetic against hand-computed Erlang C and M/M/1 cases. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  erlangC,
  mixtureQuantile,
  poolP95,
  responseComponent,
  serversForP95,
  shareWithin,
  shiftedExponential,
  waitTail,
} from '../../lib/cost/engine/queueing';

const close = (actual: number, expected: number, tol = 1e-3) =>
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${actual} ≉ ${expected}`);

describe('Erlang C', () => {
  test('hand-computed cases', () => {
    // c = 1: the probability of waiting is the utilisation.
    close(erlangC(1, 0.7), 0.7);
    // c = 2, a = 1: (1/2 · 2/1) / (1 + 1 + 1) = 1/3.
    close(erlangC(2, 1), 1 / 3);
    // c = 3, a = 2: (8/6 · 3/1) / (1 + 2 + 2 + 4) = 4/9.
    close(erlangC(3, 2), 4 / 9);
    // c = 10, a = 8: 0.4092 (standard table value).
    close(erlangC(10, 8), 0.4092, 1e-3);
  });

  test('no load never waits, overload always waits', () => {
    assert.equal(erlangC(4, 0), 0);
    assert.equal(erlangC(4, 4), 1);
    assert.equal(erlangC(4, 9), 1);
    assert.throws(() => erlangC(0, 1), RangeError);
  });

  test('the wait tail decays at cμ − λ', () => {
    // M/M/1, mean service 10 ms, λ = 0.05/ms (ρ = 0.5): P(W > 20 ms) = 0.5 · e^{-(0.1-0.05)·20}.
    close(waitTail(1, 0.05, 10, 20), 0.5 * Math.exp(-1));
    assert.equal(waitTail(1, 0.2, 10, 1000), 1);
  });
});

describe('response time percentiles', () => {
  test('M/M/1 with exponential service: the response time is Exp(μ − λ), p95 = ln20 / (μ − λ)', () => {
    const mean = 10;
    const service = { meanMs: mean, p50Ms: mean * Math.LN2, p95Ms: mean * Math.log(20) };
    assert.ok(shiftedExponential(service).shiftMs < 1e-9);
    close(poolP95(service, 1, 0.05), Math.log(20) / 0.05, 1e-3);
    close(poolP95(service, 1, 0), mean * Math.log(20), 1e-3);
  });

  test('a constant service time with no load answers at that time', () => {
    const service = { meanMs: 8, p50Ms: 8, p95Ms: 8 };
    close(poolP95(service, 3, 0), 8, 1e-3);
  });

  test('a mixture counts its rare slow component only when it is above 5%', () => {
    const service = { meanMs: 5, p50Ms: 5, p95Ms: 5 };
    const warm = responseComponent(0.97, service, 4, 0.01);
    const cold = responseComponent(0.03, service, 4, 0.01, 500);
    assert.ok(mixtureQuantile([warm, cold], 0.95) < 20);
    const coldMany = responseComponent(0.1, service, 4, 0.01, 500);
    assert.ok(mixtureQuantile([warm, coldMany], 0.95) > 500);
    close(shareWithin([warm, coldMany], 100), 0.97 / 1.07, 1e-2);
  });
});

describe('servers for a p95 target', () => {
  const service = { meanMs: 10, p50Ms: 9, p95Ms: 14 };

  test('the fewest servers meeting the target, and one more than that meets it too', () => {
    const lambda = 0.5; // 500 rps at 10 ms mean: 5 Erlangs
    const c = serversForP95(service, lambda, 25)!;
    assert.ok(c > 5, `needs more than the offered load (${c})`);
    assert.ok(poolP95(service, c, lambda) <= 25);
    assert.ok(poolP95(service, c - 1, lambda) > 25);
  });

  test('a target below the service time itself cannot be met at any size', () => {
    assert.equal(serversForP95(service, 0.01, 12), undefined);
  });

  test('a tighter target needs at least as many servers', () => {
    const loose = serversForP95(service, 0.3, 60)!;
    const tight = serversForP95(service, 0.3, 20)!;
    assert.ok(tight >= loose);
  });
});
