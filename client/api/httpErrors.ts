/**
 * Every error the API can answer with, mapped to its HTTP status in this one place (the way KServe's
 * protocol layer maps its error types). Handlers throw; they never pick a status themselves. An error that
 * is not listed is a bug: it answers 500 with a generic message, and its details go to the log only.
 */

import { KeyNameTakenError, UnknownKeyError } from '../../lib/auth/keyStore';
import { ModelNameTakenError } from '../../lib/auth/modelOwnership';
import { InvalidScopeError } from '../../lib/auth/scopes';
import { InvalidNameError } from '../../lib/names';
import { FerryError, NotAwaitingApprovalError, UnknownDeploymentError } from '../sdk';
import { ModelTooLargeError } from '../sdk/deploy';

/** An answer decided by the API itself (auth, limits, bad requests), with its status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const FASTIFY_CODES: Record<string, number> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_ERR_VALIDATION: 400,
  FST_ERR_BAD_URL: 400,
  FST_ERR_MAX_PARAM_LENGTH: 414,
  FST_ERR_ASYNC_CONSTRAINT: 400,
};

export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof ModelTooLargeError) return 413;
  if (err instanceof UnknownDeploymentError || err instanceof UnknownKeyError) return 404;
  if (err instanceof ModelNameTakenError || err instanceof KeyNameTakenError) return 409;
  if (err instanceof NotAwaitingApprovalError) return 409;
  if (err instanceof InvalidNameError || err instanceof InvalidScopeError || err instanceof FerryError) return 400;
  const e = err as { code?: string; validation?: unknown; statusCode?: number };
  if (e.validation) return 400;
  if (e.code && FASTIFY_CODES[e.code]) return FASTIFY_CODES[e.code];
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return e.statusCode;
  return 500;
}

/** The message a client may see: the error's own for 4xx, nothing of the internals for 500. */
export function publicMessage(err: unknown, status: number): string {
  if (status >= 500) return 'internal error (the server log has the details)';
  return err instanceof Error ? err.message : String(err);
}
