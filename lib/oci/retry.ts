/**
 * When a registry request is worth repeating, and how long to wait first: a dropped or refused
 * connection, a timeout, a 5xx or a 429 may pass (a restarting registry, a proxy in between); a 4xx
 * will not, so it fails at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Wait before the second try; doubled each time after, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000 };

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

export function isTransientNetworkError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** The wait before try number `attempt + 1` (attempt counts from 1), with a little jitter. */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfter?: string | string[]): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const asked = typeof retryAfter === 'string' ? Number(retryAfter) * 1000 : Number.NaN;
  // A registry's Retry-After is honoured, within the policy's longest wait.
  const base = Number.isFinite(asked) && asked >= 0 ? Math.min(asked, policy.maxDelayMs) : exponential;
  return base * (0.8 + 0.4 * Math.random());
}

export function waitBeforeRetry(policy: RetryPolicy, attempt: number, retryAfter?: string | string[]) {
  return sleep(backoffMs(policy, attempt, retryAfter));
}
