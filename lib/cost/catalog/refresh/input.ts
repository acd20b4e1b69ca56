/**
 * What every refresh parser shares: the retrieval date and the region and type patterns that select rows,
 * and one error type that names the input file and the entry that does not fit the format.
 */
import { regionMatcher } from '../filter';

export class RefreshError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'RefreshError';
  }
}

export interface RefreshOptions {
  /** The day the files were downloaded, YYYY-MM-DD: each row's `retrieved`. */
  retrieved: string;
  /** Region names or patterns (`us-*`); none: every region in the files. */
  regions?: string[];
  /** Instance type names or patterns (`m7g.*`); none: the defaults of each parser. */
  types?: string[];
}

export function anyMatcher(patterns: string[] | undefined): ((name: string) => boolean) | undefined {
  if (!patterns?.length) return undefined;
  const matchers = patterns.map((p) => regionMatcher(p));
  return (name) => matchers.some((m) => m(name));
}

export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A price given as a decimal string ("0.0816000000") or number; NaN when it is neither. */
export function priceOf(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  return Number.NaN;
}

/** Rounded to 10 significant digits, so 0.1 + 0.2 style sums do not show as list prices they are not. */
export const tidy = (n: number) => Number(n.toPrecision(10));
