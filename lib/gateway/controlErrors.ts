/**
 * The control API's errors, and the one place that says how each is answered: its HTTP status and
 * the `code` of the JSON body `{"error": message, "code": code}` (GatewayErrorCode, the contract with
 * clients such as lib/targets/local.ts, which branch on status and code, never on the message).
 * Anything else thrown while handling a request is a 500 `internal`.
 */
import type * as http from 'node:http';
import type { GatewayErrorCode } from '../targets/deploymentTarget';

const STATUS: Record<GatewayErrorCode, number> = {
  bad_request: 400,
  deployment_not_found: 404,
  no_route: 404,
  method_not_allowed: 405,
  spec_changed: 409,
  internal: 500,
};

/** A control request that cannot be carried out as asked (a client mistake, not a failure to run it). */
export class ControlRequestError extends Error {
  constructor(
    readonly code: Exclude<GatewayErrorCode, 'internal'>,
    message: string,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

/** A spec, or a change to one, that is not valid: the message says what is wrong with it (a 400). */
export class SpecError extends ControlRequestError {
  constructor(message: string) {
    super('bad_request', message);
    this.name = 'SpecError';
  }
}

export class MethodNotAllowed extends ControlRequestError {
  constructor(
    readonly allowed: readonly string[],
    message: string,
  ) {
    super('method_not_allowed', message);
    this.name = 'MethodNotAllowed';
  }
}

export interface ErrorAnswer {
  status: number;
  body: { error: string; code: GatewayErrorCode };
  headers?: http.OutgoingHttpHeaders;
}

/** How the control API answers a request that threw `err`. */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (!(err instanceof ControlRequestError)) {
    return { status: STATUS.internal, body: { error: (err as Error).message, code: 'internal' } };
  }
  return {
    status: STATUS[err.code],
    body: { error: err.message, code: err.code },
    ...(err instanceof MethodNotAllowed ? { headers: { allow: err.allowed.join(', ') } } : {}),
  };
}
