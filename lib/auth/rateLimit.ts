/**
 * A token bucket per key: `burst` requests at once, refilled at `perSecond`. A pure decision with time
 * passed in (like lib/gateway/autoscaler.ts), so the API and the gateway share it and tests need no clock.
 * Buckets idle long enough to be full again are dropped, so memory stays bounded by active keys.
 */
export interface RateLimitSettings {
  perSecond: number;
  burst: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly settings: RateLimitSettings) {
    if (!(settings.perSecond > 0) || !(settings.burst >= 1)) {
      throw new Error('rate limit needs perSecond > 0 and burst >= 1');
    }
  }

  take(key: string, nowMs: number): RateDecision {
    const { perSecond, burst } = this.settings;
    const b = this.buckets.get(key) ?? { tokens: burst, at: nowMs };
    b.tokens = Math.min(burst, b.tokens + ((nowMs - b.at) / 1000) * perSecond);
    b.at = nowMs;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.sweep(nowMs);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / perSecond)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(nowMs: number): void {
    const fullAfterMs = (this.settings.burst / this.settings.perSecond) * 1000;
    for (const [key, b] of this.buckets) if (nowMs - b.at >= fullAfterMs) this.buckets.delete(key);
  }
}
