/**
 * How deeply a JSON text nests, found on the raw text in one pass (no recursion), so an HTTP layer can
 * refuse a body of a million `[` with a 400 before parsing it costs stack and memory. Shared by the API
 * (client/api/jsonBody.ts) and the gateway's control API.
 */
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
