/**
 * JSON bodies with a bound on nesting depth, checked on the raw text before parsing (one pass, no
 * recursion), so a body of a million `[` is refused with a 400 instead of costing stack and memory.
 */
import { HttpError } from './httpErrors';

export const MAX_JSON_DEPTH = 32;

export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (text.trim() === '') return {};
  if (jsonDepth(text) > maxDepth) throw new HttpError(400, `JSON body nests deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}
