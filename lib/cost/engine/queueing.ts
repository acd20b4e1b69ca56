/**
 * Queueing arithmetic: Erlang C (M/M/c) for the wait, a shifted exponential for the service time, and
 * percentiles of mixtures of such response times (some requests meet a cold start, some a fleet short of
 * an interrupted instance). Everything here is closed-form or a bisection: pure and deterministic.
 *
 * Assumptions (stated once, here):
 * - arrivals are Poisson within a minute (the profile gives each minute's mean rate);
 * - each server (one inference at a time) serves first come first served from a shared queue: the
 *   gateway's least-loaded routing is close to that;
 * - the wait is M/M/c with the measured MEAN service time (or the fit's, when higher: effectiveMeanMs); the
 *   service time itself is a shifted exponential fitted to the measured p50 and p95 (d + Exp(r): p50 = d +
 *   ln2/r, p95 = d + ln20/r), which is what onnxruntime's latency histograms look like (a floor plus a tail).
 */

export interface ServiceTime {
  /** Measured mean, median and 95th percentile, milliseconds. */
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
}

/** Erlang C: the probability that an arrival waits, with `c` servers and offered load `a` = λ/μ (Erlangs). */
export function erlangC(c: number, a: number): number {
  if (!Number.isInteger(c) || c < 1) throw new RangeError(`servers must be a positive integer, got ${c}`);
  if (a <= 0) return 0;
  if (a >= c) return 1;
  // Erlang B by its stable recursion, then C from B.
  let b = 1;
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  return (c * b) / (c - a * (1 - b));
}

/** P(wait > t ms) in M/M/c: C(c, a) · e^{-(cμ - λ) t}. Rates per millisecond. */
export function waitTail(c: number, lambdaPerMs: number, meanServiceMs: number, tMs: number): number {
  const mu = 1 / meanServiceMs;
  if (lambdaPerMs >= c * mu) return 1;
  return erlangC(c, lambdaPerMs / mu) * Math.exp(-(c * mu - lambdaPerMs) * Math.max(0, tMs));
}

interface ShiftedExp {
  shiftMs: number;
  /** Rate of the exponential part, per ms (Infinity: a constant service time). */
  rate: number;
}

export function shiftedExponential(s: ServiceTime): ShiftedExp {
  const spread = s.p95Ms - s.p50Ms;
  if (!(spread > 0)) return { shiftMs: s.p50Ms, rate: Number.POSITIVE_INFINITY };
  const rate = Math.log(10) / spread; // ln20 - ln2
  return { shiftMs: Math.max(0, s.p50Ms - Math.LN2 / rate), rate };
}

/** P(E_r + E_θ > x) for independent exponentials (the hypoexponential tail). */
function sumOfExponentialsTail(r: number, theta: number, x: number): number {
  if (x <= 0) return 1;
  if (!Number.isFinite(r)) return Math.exp(-theta * x);
  if (Math.abs(r - theta) < 1e-12 * Math.max(r, theta)) return (1 + r * x) * Math.exp(-r * x);
  return (theta * Math.exp(-r * x) - r * Math.exp(-theta * x)) / (theta - r);
}

/** One kind of request: a share of all requests and the tail of its response time. */
export interface ResponseComponent {
  weight: number;
  /** P(response > t ms). */
  tail: (tMs: number) => number;
}

/**
 * The response time (wait + service) of a request to a pool of `servers` at `lambdaPerMs`, plus `extraMs`
 * (a cold start it waits for, a network round trip). An overloaded pool has tail 1 everywhere.
 */
export function responseComponent(
  weight: number,
  service: ServiceTime,
  servers: number,
  lambdaPerMs: number,
  extraMs = 0,
): ResponseComponent {
  const { shiftMs, rate } = shiftedExponential(service);
  const mu = 1 / effectiveMeanMs(service);
  const overloaded = lambdaPerMs >= servers * mu;
  const pWait = overloaded ? 1 : erlangC(servers, lambdaPerMs / mu);
  const theta = servers * mu - lambdaPerMs;
  const serviceTail = (x: number) => (x < 0 ? 1 : Number.isFinite(rate) ? Math.exp(-rate * x) : 0);
  return {
    weight,
    tail: (t) => {
      if (overloaded) return 1;
      const x = t - extraMs - shiftMs;
      if (x < 0) return 1;
      return (1 - pWait) * serviceTail(x) + pWait * sumOfExponentialsTail(rate, theta, x);
    },
  };
}

/**
 * The mean the queue is sized with: the measured mean, or the fitted distribution's when that is higher
 * (a p95 far above the p50 fits a tail heavier than the measured mean says): the wait is then never
 * computed with less work than the service times drawn from the fit bring.
 */
export function effectiveMeanMs(service: ServiceTime): number {
  const { shiftMs, rate } = shiftedExponential(service);
  return Math.max(service.meanMs, shiftMs + (Number.isFinite(rate) ? 1 / rate : 0));
}

/** The q-quantile (e.g. 0.95) of a mixture of response times, ms; Infinity when a component is overloaded past it. */
export function mixtureQuantile(components: ResponseComponent[], q: number): number {
  const total = components.reduce((a, c) => a + c.weight, 0);
  if (total <= 0) return 0;
  const exceed = (t: number) => components.reduce((a, c) => a + c.weight * c.tail(t), 0) / total;
  const target = 1 - q;
  let hi = 1;
  while (exceed(hi) > target) {
    hi *= 2;
    if (hi > 1e9) return Number.POSITIVE_INFINITY;
  }
  let lo = 0;
  for (let i = 0; i < 60 && hi - lo > 1e-3; i++) {
    const mid = (lo + hi) / 2;
    if (exceed(mid) > target) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Share of requests answered within `tMs`. */
export function shareWithin(components: ResponseComponent[], tMs: number): number {
  const total = components.reduce((a, c) => a + c.weight, 0);
  if (total <= 0) return 1;
  return 1 - components.reduce((a, c) => a + c.weight * c.tail(tMs), 0) / total;
}

/** p95 of the response time of one pool (no cold starts). */
export function poolP95(service: ServiceTime, servers: number, lambdaPerMs: number, extraMs = 0): number {
  return mixtureQuantile([responseComponent(1, service, servers, lambdaPerMs, extraMs)], 0.95);
}

/**
 * The fewest servers whose p95 response time at `lambdaPerMs` is within `targetMs`, or undefined when even
 * an idle server's service time misses it (or more than `maxServers` would be needed).
 */
export function serversForP95(
  service: ServiceTime,
  lambdaPerMs: number,
  targetMs: number,
  maxServers = 4096,
): number | undefined {
  if (poolP95(service, maxServers, 0) > targetMs) return undefined;
  const mu = 1 / effectiveMeanMs(service);
  let c = Math.max(1, Math.floor(lambdaPerMs / mu) + 1);
  if (lambdaPerMs === 0) c = 1;
  for (; c <= maxServers; c++) if (poolP95(service, c, lambdaPerMs) <= targetMs) return c;
  return undefined;
}
