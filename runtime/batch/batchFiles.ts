/**
 * The batch runner's naming rules and resume plan: pure, so the unit tests cover them alone.
 *
 *   input                       output
 *   <name>.json             →   <name>.json.response.json     the response, written whole or not at all
 *                               errors/<name>.json.error.json  why that request failed (gone once it succeeds)
 *                               batch-summary.json             the last run's totals and failures
 *
 * Names are paths relative to the input folder or prefix, with '/' between parts; subfolders are kept.
 * A request is finished when its response exists: outputs are written under a temporary name and renamed
 * (a folder) or put in one request (a bucket), so an existing response is always complete.
 */

export const RESPONSE_SUFFIX = '.response.json';
export const ERROR_SUFFIX = '.error.json';
export const ERRORS_DIR = 'errors';
export const SUMMARY_NAME = 'batch-summary.json';
/** Temporary files of a folder output start with this, next to where they are renamed to. */
export const TEMP_PREFIX = '.ferry-batch-';

export const responseNameFor = (request: string): string => `${request}${RESPONSE_SUFFIX}`;
export const errorNameFor = (request: string): string => `${ERRORS_DIR}/${request}${ERROR_SUFFIX}`;

/**
 * Whether a listed name (relative to the input) is a request file: `*.json`, not one of the runner's own
 * outputs (so the input and output may be the same folder) and not hidden.
 */
export function isRequestName(name: string): boolean {
  if (!name.endsWith('.json') || name.endsWith(RESPONSE_SUFFIX) || name.endsWith(ERROR_SUFFIX)) return false;
  if (name === SUMMARY_NAME) return false;
  return !name.split('/').some((part) => part === '' || part.startsWith('.'));
}

/** The request a listed output name answers, or undefined when it is not a response. */
export function requestOfResponse(name: string): string | undefined {
  return name.endsWith(RESPONSE_SUFFIX) ? name.slice(0, -RESPONSE_SUFFIX.length) : undefined;
}

export interface BatchPlan {
  /** Every request file, sorted. */
  requests: string[];
  /** Requests whose response is already there: not run again. */
  done: string[];
  /** The rest, in order. */
  todo: string[];
}

/** Which requests still need running, given the input's names and the output's names. */
export function planBatch(inputNames: Iterable<string>, outputNames: Iterable<string>): BatchPlan {
  const requests = [...new Set([...inputNames].filter(isRequestName))].sort();
  const answered = new Set<string>();
  for (const name of outputNames) {
    const request = requestOfResponse(name);
    if (request !== undefined) answered.add(request);
  }
  const done: string[] = [];
  const todo: string[] = [];
  for (const r of requests) (answered.has(r) ? done : todo).push(r);
  return { requests, done, todo };
}
