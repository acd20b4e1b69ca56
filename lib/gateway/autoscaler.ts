/**
 * Concurrency-based autoscaling of one revision, after Knative's pod autoscaler (KPA), written from
 * its public documentation: the signal is the number of requests in flight (held ones included),
 * averaged over time; desired replicas = ceil(average / targetInFlight).
 *
 * - Stable mode decides on the average over the stable window.
 * - Panic mode starts when the short panic window's average reaches panicThreshold × what the ready
 *   replicas are sized for. It decides on the panic window at once and never scales down; it ends
 *   after a whole stable window without a panic-level burst.
 * - Scale-down delay: the desired count is the highest wanted during the last scaleDownDelayMs, so a
 *   lower count takes effect only after it has been wanted that long (scale-up is immediate).
 *
 * Time is passed in (milliseconds), so decisions are deterministic under test.
 */
import type { AutoscalingSpec } from '../targets/deploymentTarget';
import { SpecError } from './controlErrors';

export type AutoscalingSettings = Required<AutoscalingSpec>;

export const MAX_REPLICAS = 64;

/** Defaults filled in and every field checked; throws a SpecError (a 400) saying what is wrong. */
export function normalizeAutoscaling(input: unknown, replicas: number | undefined): AutoscalingSettings {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new SpecError('"autoscaling" must be an object');
  const a = input as Record<string, unknown>;
  const allowed = [
    'targetInFlight',
    'minReplicas',
    'maxReplicas',
    'stableWindowMs',
    'panicWindowMs',
    'panicThreshold',
    'scaleDownDelayMs',
  ];
  for (const key of Object.keys(a)) {
    if (!allowed.includes(key))
      throw new SpecError(`"autoscaling" has an unknown field "${key}" (known: ${allowed.join(', ')})`);
  }
  const num = (key: string, fallback: number, check: (v: number) => boolean, rule: string): number => {
    const v = a[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v))
      throw new SpecError(`"autoscaling.${key}" must be ${rule}`);
    return v;
  };
  const int = (v: number) => Number.isInteger(v);
  const targetInFlight = num('targetInFlight', 1, (v) => v > 0, 'a number above 0');
  const minReplicas = num(
    'minReplicas',
    1,
    (v) => int(v) && v >= 1 && v <= MAX_REPLICAS,
    `an integer from 1 to ${MAX_REPLICAS} (scale to zero is "scaleToZeroAfterMs")`,
  );
  const maxReplicas = num(
    'maxReplicas',
    Math.min(MAX_REPLICAS, Math.max(minReplicas, replicas ?? 0, 4)),
    (v) => int(v) && v >= minReplicas && v <= MAX_REPLICAS,
    `an integer from minReplicas (${minReplicas}) to ${MAX_REPLICAS}`,
  );
  const stableWindowMs = num('stableWindowMs', 60_000, (v) => v >= 100 && v <= 3_600_000, 'from 100 to 3600000 ms');
  const panicWindowMs = num(
    'panicWindowMs',
    Math.max(100, stableWindowMs / 10),
    (v) => v >= 50 && v <= stableWindowMs,
    `from 50 ms to stableWindowMs (${stableWindowMs})`,
  );
  const panicThreshold = num('panicThreshold', 2, (v) => v >= 1 && v <= 10, 'from 1 to 10');
  const scaleDownDelayMs = num('scaleDownDelayMs', 30_000, (v) => v >= 0 && v <= 3_600_000, 'from 0 to 3600000 ms');
  return { targetInFlight, minReplicas, maxReplicas, stableWindowMs, panicWindowMs, panicThreshold, scaleDownDelayMs };
}

export interface ScaleDecision {
  desired: number;
  panic: boolean;
  /** Average concurrency over the stable and the panic window. */
  stableConcurrency: number;
  panicConcurrency: number;
  /**
   * Why `desired` is what it is: panic | stable | delay (held up by the scale-down delay) | floor (held
   * up by a floor set from outside, such as the monitor's predictive floor).
   */
  reason: 'panic' | 'stable' | 'delay' | 'floor';
}

/**
 * The time integral of the concurrency level, sampled at each decision, so the average over any
 * window is (integral now − integral at the window's start) / window length: no request is missed,
 * however short.
 */
class ConcurrencyIntegral {
  private level = 0;
  private integral = 0;
  private lastChange: number;
  private samples: Array<{ t: number; integral: number }> = [];

  constructor(now: number) {
    this.lastChange = now;
    this.samples.push({ t: now, integral: 0 });
  }

  private advance(now: number): void {
    if (now > this.lastChange) {
      this.integral += this.level * (now - this.lastChange);
      this.lastChange = now;
    }
  }

  set(level: number, now: number): void {
    this.advance(now);
    this.level = level;
  }

  sample(now: number, keepMs: number): void {
    this.advance(now);
    this.samples.push({ t: now, integral: this.integral });
    // Keep one sample at or before the oldest window start.
    while (this.samples.length > 2 && this.samples[1].t <= now - keepMs) this.samples.shift();
  }

  /** Time-weighted average level over the last `windowMs` (over less if history is shorter). */
  average(windowMs: number, now: number): number {
    this.advance(now);
    const from = now - windowMs;
    let baseIndex = -1;
    for (let i = 0; i < this.samples.length && this.samples[i].t <= from; i++) baseIndex = i;
    let start: number;
    let startIntegral: number;
    if (baseIndex === -1) {
      start = this.samples[0].t;
      startIntegral = this.samples[0].integral;
    } else {
      // The window starts between two samples: interpolate the integral linearly between them.
      const base = this.samples[baseIndex];
      const next = this.samples[baseIndex + 1] ?? { t: now, integral: this.integral };
      start = from;
      startIntegral =
        base.integral + ((next.integral - base.integral) * (from - base.t)) / Math.max(1e-9, next.t - base.t);
    }
    const span = now - start;
    return span <= 0 ? this.level : (this.integral - startIntegral) / span;
  }
}

export class ConcurrencyAutoscaler {
  private readonly concurrency: ConcurrencyIntegral;
  private panicUntil = -Infinity;
  private wanted: Array<{ t: number; desired: number }> = [];
  last: ScaleDecision | undefined;

  /**
   * `running`: the count the revision runs now. A new autoscaler has no memory of wanted counts, so
   * without it the first decision would drop to what zero load needs at once, ignoring the
   * scale-down delay (e.g. right after autoscaling is turned on or its settings change).
   */
  constructor(
    readonly settings: AutoscalingSettings,
    now: number,
    running = 0,
  ) {
    this.concurrency = new ConcurrencyIntegral(now);
    if (running > 0) this.wanted.push({ t: now, desired: Math.min(settings.maxReplicas, running) });
  }

  /** The current number of requests in flight or held for this revision changed. */
  setConcurrency(level: number, now: number): void {
    this.concurrency.set(level, now);
  }

  /** Clears the memory of panic and of wanted counts (after a wake from zero). */
  reset(): void {
    this.panicUntil = -Infinity;
    this.wanted = [];
  }

  /**
   * The replica count to run now. `ready`: ready replicas; `current`: the count currently desired
   * (panic mode never goes below it); `floor`: a lower bound above minReplicas, for now (capped at
   * maxReplicas). A floor only ever adds replicas, and once it goes they leave with the usual
   * scale-down delay, like any count no longer wanted.
   */
  decide(now: number, ready: number, current: number, floor = 0): ScaleDecision {
    const s = this.settings;
    this.concurrency.sample(now, Math.max(s.stableWindowMs, s.panicWindowMs) + 1000);
    const stableConcurrency = this.concurrency.average(s.stableWindowMs, now);
    const panicConcurrency = this.concurrency.average(s.panicWindowMs, now);
    const replicasFor = (c: number) => Math.ceil(c / s.targetInFlight - 1e-9);
    const clamp = (n: number) => Math.min(s.maxReplicas, Math.max(s.minReplicas, n));

    if (panicConcurrency >= s.panicThreshold * Math.max(1, ready) * s.targetInFlight)
      this.panicUntil = now + s.stableWindowMs;
    const panic = now < this.panicUntil;
    const raw = clamp(panic ? Math.max(replicasFor(panicConcurrency), current) : replicasFor(stableConcurrency));

    // The floor counts as wanted, so its replicas, too, go only after the scale-down delay once it lapses.
    const floored = Math.max(raw, Math.min(s.maxReplicas, floor));
    this.wanted.push({ t: now, desired: floored });
    while (this.wanted.length > 1 && this.wanted[0].t < now - s.scaleDownDelayMs) this.wanted.shift();
    const desired = Math.max(...this.wanted.map((w) => w.desired));
    const decision: ScaleDecision = {
      desired,
      panic,
      stableConcurrency,
      panicConcurrency,
      reason: desired > raw ? (desired === floored ? 'floor' : 'delay') : panic ? 'panic' : 'stable',
    };
    this.last = decision;
    return decision;
  }
}
