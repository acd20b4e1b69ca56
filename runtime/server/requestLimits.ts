/**
 * The bounds a request must stay within before the server spends memory or stack on it. The body size
 * (maxBodyBytes) bounds the text; these bound what the text can make the server do:
 *  - a tensor's first dimension, when the model leaves it dynamic (the batch), is at most `maxBatch`, and
 *    its element count is checked against the data actually sent before anything is allocated, so a
 *    shape cannot ask for more memory than its request carries;
 *  - a shape has at most MAX_RANK dimensions (the model's rank, when it declares one, is checked too);
 *  - `parameters` objects, which come back on the response, nest at most MAX_PARAMETER_DEPTH deep;
 *  - a client's value quoted in an error message is cut to a short preview (a deeply nested or huge
 *    value must not become a stack overflow or a megabyte of error text).
 */
import { InvalidInputError } from './errors';

/** Default for `maxBatch`: rows one request may carry along a dynamic first dimension. */
export const DEFAULT_MAX_BATCH = 4096;
/** Most dimensions a request's shape may have (ONNX has no limit; real models stay far below). */
export const MAX_RANK = 64;
/** Deepest nesting of a `parameters` object (they are echoed, so serialized again). */
export const MAX_PARAMETER_DEPTH = 16;
const PREVIEW_CHARS = 120;

/** A short, safe rendering of a client's value for an error message (never recurses without bound). */
export function preview(value: unknown): string {
  let out = '';
  const write = (v: unknown, depth: number): void => {
    if (out.length > PREVIEW_CHARS) return;
    if (v === null || typeof v !== 'object') {
      out +=
        typeof v === 'string'
          ? JSON.stringify(v.length > PREVIEW_CHARS ? `${v.slice(0, PREVIEW_CHARS)}…` : v)
          : String(v);
      return;
    }
    if (depth >= 4) {
      out += Array.isArray(v) ? '[…]' : '{…}';
      return;
    }
    const array = Array.isArray(v);
    out += array ? '[' : '{';
    let first = true;
    for (const [key, item] of array ? v.entries() : Object.entries(v)) {
      if (out.length > PREVIEW_CHARS) {
        out += ',…';
        break;
      }
      if (!first) out += ',';
      first = false;
      if (!array) out += `${JSON.stringify(String(key).slice(0, 40))}:`;
      write(item, depth + 1);
    }
    out += array ? ']' : '}';
  };
  write(value, 0);
  return out.length > PREVIEW_CHARS * 2 ? `${out.slice(0, PREVIEW_CHARS * 2)}…` : out;
}

/** Throws unless `value` (a parameters object) nests at most MAX_PARAMETER_DEPTH deep. */
export function checkParameterDepth(value: unknown, where: string): void {
  // Iterative: the point is to refuse what would overflow a recursive walk (JSON.stringify on the way out).
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_PARAMETER_DEPTH)
      throw new InvalidInputError(`${where} nests deeper than ${MAX_PARAMETER_DEPTH} levels`);
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
  }
}

/**
 * The element count of `shape` (already checked to be non-negative integers). Throws when the shape has
 * more than MAX_RANK dimensions or when its first dimension, dynamic in the model (`batchDynamic`), is
 * more than `maxBatch` rows.
 */
export function elementCountOf(
  name: string,
  shape: readonly number[],
  batchDynamic: boolean,
  maxBatch: number,
): number {
  if (shape.length > MAX_RANK)
    throw new InvalidInputError(`input "${name}" has a shape of ${shape.length} dimensions (at most ${MAX_RANK})`);
  if (batchDynamic && shape.length > 0 && shape[0] > maxBatch) {
    throw new InvalidInputError(
      `input "${name}" has a batch of ${shape[0]} rows, more than this server takes in one request (${maxBatch}, FERRY_MAX_BATCH)`,
    );
  }
  let count = 1;
  for (const d of shape) count *= d;
  return count;
}
