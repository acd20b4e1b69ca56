/**
 * The control API's errors, and the one place that says how each is answered: its HTTP status and
 * the `code` of the JSON body `{"error": message, "code": code}` (GatewayErrorCode, the contract with
 * clients such as lib/targets/local.ts, which branch on status and code, never on the message).
 * Errors fastify raises itself (body too large or not JSON, a schema refusing a request, a bad URL) are
 * mapped here too; anything else thrown while handling a request is a 500 `internal`.
 */
import type * as http from 'node:http';
import type { FastifySchemaValidationError } from 'fastify/types/schema';
import type { GatewayErrorCode } from '../targets/deploymentTarget';

const STATUS: Record<GatewayErrorCode, number> = {
  bad_request: 400,
  registry_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  deployment_not_found: 404,
  no_route: 404,
  method_not_allowed: 405,
  spec_changed: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
};

/** A control request that cannot be carried out as asked (a client mistake, not a failure to run it). */
export class ControlRequestError extends Error {
  constructor(
    readonly code: Exclude<GatewayErrorCode, 'internal'>,
    message: string,
    readonly headers?: http.OutgoingHttpHeaders,
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
    super('method_not_allowed', message, { allow: allowed.join(', ') });
    this.name = 'MethodNotAllowed';
  }
}

/** Errors of fastify's own, by their code. */
const FASTIFY_CODES: Record<string, Exclude<GatewayErrorCode, 'internal'>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_VALIDATION: 'bad_request',
  FST_ERR_BAD_URL: 'bad_request',
  FST_ERR_MAX_PARAM_LENGTH: 'bad_request',
};

export interface ErrorAnswer {
  status: number;
  body: { error: string; code: GatewayErrorCode };
  headers?: http.OutgoingHttpHeaders;
}

/** How the control API answers a request that threw `err`. */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (err instanceof ControlRequestError) {
    return {
      status: STATUS[err.code],
      body: { error: err.message, code: err.code },
      ...(err.headers ? { headers: err.headers } : {}),
    };
  }
  const fastifyCode = FASTIFY_CODES[(err as { code?: string }).code ?? ''];
  if (fastifyCode) return { status: STATUS[fastifyCode], body: { error: (err as Error).message, code: fastifyCode } };
  return { status: STATUS.internal, body: { error: (err as Error).message, code: 'internal' } };
}

/**
 * A request the route's JSON schema refused, said the way the spec parser (deploymentSpec.ts) says it:
 * `"image.repository" must be given`, `unknown field "spilt"`, `"autoscaling" must be an object, or null`.
 * The schemas check shapes and types; value rules (ranges, sums, names that must exist) are the parser's.
 */
export function schemaError(errors: FastifySchemaValidationError[], dataVar: string): ControlRequestError {
  const e = errors[0];
  const segments = (e.instancePath ?? '')
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const field = segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
  const quoted = (name: string) => `"${name}"`;
  const at = field ? quoted(field) : dataVar;
  const p = e.params as Record<string, unknown>;
  let message: string;
  switch (e.keyword) {
    case 'required':
      message = `${quoted(field ? `${field}.${p.missingProperty}` : String(p.missingProperty))} must be given`;
      break;
    case 'additionalProperties':
      message = field
        ? `${at} has an unknown field "${p.additionalProperty}"`
        : `unknown field "${p.additionalProperty}"`;
      break;
    case 'type': {
      const types = ([] as string[]).concat(p.type as string | string[]);
      message = `${at} must be ${types.map((t) => typeName(t, !field)).join(', or ')}`;
      break;
    }
    case 'enum':
      message = `${at} must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
      break;
    default:
      message = `${at} ${e.message}`;
  }
  return new ControlRequestError('bad_request', message);
}

function typeName(type: string, whole: boolean): string {
  if (type === 'object') return whole ? 'a JSON object' : 'an object';
  if (type === 'null') return 'null';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
