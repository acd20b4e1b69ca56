/**
 * JSON bodies with a bound on nesting depth (lib/jsonDepth.ts), checked on the raw text before parsing,
 * so a body of a million `[` is refused with a 400 instead of costing stack and memory.
 */
import { jsonDepth, MAX_JSON_DEPTH } from '../../lib/jsonDepth';
import { HttpError } from './httpErrors';

export { jsonDepth, MAX_JSON_DEPTH };

export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (text.trim() === '') return {};
  if (jsonDepth(text) > maxDepth) throw new HttpError(400, `JSON body nests deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}
