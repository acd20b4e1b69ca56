/**
 * A discrete-event replay of a profile's day through a chosen option: Poisson arrivals at each minute's
 * rate, service times drawn from the shifted exponential fitted to the measured p50/p95 (queueing.ts),
 * FCFS over the servers the option's schedule runs in that hour, less those of spot instances that an
 * interruption trace takes away until their replacement serves; for serverless, an instance per request
 * in flight, reclaimed after the keep-warm time, a cold start for each new one. It checks the closed-form
 * figures of plan.ts by simulation (bench/cost-engine.ts). Randomness is passed in.
 */
import { type ServiceTime, shiftedExponential } from './queueing';
import type { FleetSchedule } from './types';

export interface Interruption {
  /** When the notice comes, ms from the start of the replay; the spot instance stops serving then (it drains). */
  atMs: number;
  /** Spot instances lost (1, or a zone's share). */
  instances: number;
}

export interface ReplayResult {
  requests: number;
  p95Ms: number;
  withinSloShare: number;
  coldStarts: number;
}

function sampler(service: ServiceTime, random: () => number): () => number {
  const { shiftMs, rate } = shiftedExponential(service);
  return () => shiftMs + (Number.isFinite(rate) ? -Math.log(1 - random()) / rate : 0);
}

function arrivals(rates: number[], random: () => number, each: (t: number) => void): void {
  for (const [m, rps] of rates.entries()) {
    if (rps <= 0) continue;
    let t = m * 60_000;
    const end = t + 60_000;
    for (;;) {
      t += (-Math.log(1 - random()) / rps) * 1000;
      if (t >= end) break;
      each(t);
    }
  }
}

/** Latencies in 0.05 ms bins up to a minute (a day of requests at any rate in constant memory). */
class LatencyHistogram {
  private readonly bins = new Float64Array(1_200_000 + 1);
  n = 0;
  within = 0;
  constructor(private readonly sloMs: number) {}
  add(ms: number): void {
    this.bins[Math.min(this.bins.length - 1, Math.ceil(ms / 0.05))]++;
    this.n++;
    if (ms <= this.sloMs) this.within++;
  }
  quantile(q: number): number {
    const rank = Math.ceil(q * this.n);
    let seen = 0;
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i];
      if (seen >= rank) return i * 0.05;
    }
    return Number.POSITIVE_INFINITY;
  }
}

function summarize(h: LatencyHistogram, coldStarts: number): ReplayResult {
  return {
    requests: h.n,
    p95Ms: h.n ? h.quantile(0.95) : 0,
    withinSloShare: h.n ? h.within / h.n : 1,
    coldStarts,
  };
}

/** A fleet: hour h runs (onDemand[h] + spot[h]) × serversPerInstance servers, FCFS from one queue. */
export function replayFleet(opts: {
  rates: number[];
  service: ServiceTime;
  schedule: FleetSchedule;
  sloMs: number;
  random: () => number;
  interruptions?: Interruption[];
  replacementMs?: number;
  extraMs?: number;
}): ReplayResult {
  const { schedule, rates } = opts;
  const draw = sampler(opts.service, opts.random);
  const spi = schedule.serversPerInstance;
  const maxServers = Math.max(...schedule.onDemand.map((od, h) => (od + (schedule.spot?.[h] ?? 0)) * spi));
  const free = new Float64Array(maxServers);
  const hist = new LatencyHistogram(opts.sloMs);
  const cuts = (opts.interruptions ?? []).map((i) => ({
    from: i.atMs,
    to: i.atMs + (opts.replacementMs ?? 180_000),
    n: i.instances,
  }));
  arrivals(rates, opts.random, (t) => {
    const h = Math.min(schedule.onDemand.length - 1, Math.floor(t / 3_600_000));
    let instances = schedule.onDemand[h] + (schedule.spot?.[h] ?? 0);
    for (const c of cuts) if (t >= c.from && t < c.to) instances -= Math.min(c.n, schedule.spot?.[h] ?? 0);
    const servers = Math.max(1, instances * spi);
    let best = 0;
    for (let s = 1; s < servers; s++) if (free[s] < free[best]) best = s;
    const start = Math.max(t, free[best]);
    const done = start + draw();
    free[best] = done;
    hist.add(done - t + (opts.extraMs ?? 0));
  });
  return summarize(hist, 0);
}

/** Serverless: a warm idle instance serves at once; none idle and warm → a new instance and a cold start. */
export function replayServerless(opts: {
  rates: number[];
  service: ServiceTime;
  coldStartMs: number;
  keepWarmMs: number;
  sloMs: number;
  random: () => number;
  extraMs?: number;
}): ReplayResult {
  const draw = sampler(opts.service, opts.random);
  const hist = new LatencyHistogram(opts.sloMs);
  // Each instance: busy until, idle since (= busy until once done).
  let instances: number[] = [];
  let cold = 0;
  arrivals(opts.rates, opts.random, (t) => {
    instances = instances.filter((freeAt) => t - freeAt <= opts.keepWarmMs || freeAt > t);
    let pick = -1;
    for (let i = 0; i < instances.length; i++)
      if (instances[i] <= t && (pick < 0 || instances[i] > instances[pick])) pick = i;
    let latency: number;
    if (pick >= 0) {
      latency = draw();
      instances[pick] = t + latency;
    } else {
      cold++;
      latency = opts.coldStartMs + draw();
      instances.push(t + latency);
    }
    hist.add(latency + (opts.extraMs ?? 0));
  });
  return summarize(hist, cold);
}
