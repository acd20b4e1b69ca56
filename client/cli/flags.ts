/**
 * Flag values turned into what the SDK takes. Commander declares and reads the flags (program.ts);
 * their values are checked here, so a bad one is refused with the same message wherever it is given.
 */
import { parseBudget } from '../../lib/optimize/budget';
import type { AccuracyBudget } from '../../workflows/types';
import { FerryError } from '../sdk/errors';
import { parseDuration } from './duration';

/** `a, b,,c` → ['a', 'b', 'c']. */
export function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function positiveInt(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new FerryError(`${flag} must be a positive integer, got "${raw}"`);
  return n;
}

/** `cosine=0.99,top1=0.99,maxabs=X` → a partial budget. */
export function budgetOption(raw: string): Partial<AccuracyBudget> {
  try {
    return parseBudget(raw);
  } catch (err) {
    throw new FerryError(`--accuracy-budget: ${(err as Error).message}`);
  }
}

/** A duration flag's value in milliseconds; a refusal names the flag. */
export function durationFlag(flag: string, raw: string): number {
  try {
    return parseDuration(raw);
  } catch (err) {
    throw new FerryError(`${flag}: ${(err as Error).message}`);
  }
}
