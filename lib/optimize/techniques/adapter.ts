/**
 * What the technique adapters share: readers for the options a plan passes (`ctx.options`, plain JSON), each
 * throwing the message a user sees when an option is wrong, and how sizes read in notes.
 */

export type RawOptions = Record<string, unknown>;

export function booleanOption(o: RawOptions, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new Error(`option ${key} must be true or false`);
  return v;
}

export function nonNegativeOption(o: RawOptions, key: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new Error(`option ${key} must be a non-negative number`);
  return v;
}

/** Option `opTypes`: a list drawn from `allowed`. */
export function opTypesOption<T extends string>(
  o: RawOptions,
  allowed: readonly T[],
  message: string,
): T[] | undefined {
  const v = o.opTypes;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((t) => (allowed as readonly unknown[]).includes(t))) throw new Error(message);
  return v as T[];
}

/** Option `excludeNodes`: node names (or first outputs, for unnamed nodes). */
export function excludeNodesOption(o: RawOptions): string[] | undefined {
  const v = o.excludeNodes;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((t) => typeof t === 'string'))
    throw new Error('option excludeNodes must be a list of node names');
  return v as string[];
}

/** A size for notes, in MB (2^20 bytes) with two decimals. */
export function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(2)} MB`;
}
