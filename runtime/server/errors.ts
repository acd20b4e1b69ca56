/**
 * What the inference server's layers throw when a request cannot be served as asked: one type per kind
 * of failure, none of them knowing HTTP. httpStatusOf below maps each type to its status in one place,
 * the way KServe's protocol layer maps its InvalidInput, ModelNotFound, ... exceptions (the batch runner
 * records the same status for a request file that fails).
 */

/** The request is malformed, or its inputs are not what the model takes. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** No model (or no version of it) by that name on this server. */
export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

/** No route for this path. */
export class RouteNotFoundError extends Error {
  override name = 'RouteNotFoundError';
}

/** The route exists but not for this method; `allow` is the one it takes. */
export class MethodNotAllowedError extends Error {
  override name = 'MethodNotAllowedError';
  constructor(
    readonly method: string | undefined,
    readonly allow: string,
  ) {
    super(`${method} is not allowed here; use ${allow}`);
  }
}

/** The request body is larger than the server accepts. */
export class RequestTooLargeError extends Error {
  override name = 'RequestTooLargeError';
}

/** The server cannot serve yet (models still loading); `retryAfterSeconds` when a retry soon will do. */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Running the model failed for a reason that is not the request's fault. */
export class InferenceFailedError extends Error {
  override name = 'InferenceFailedError';
}

/**
 * Each error type's HTTP status, in one place (as KServe's protocol layer maps its exceptions). Anything
 * not listed is the server's own failure: 500.
 */
const HTTP_STATUS_OF: ReadonlyArray<readonly [abstract new (...args: never[]) => Error, number]> = [
  [InvalidInputError, 400],
  [ModelNotFoundError, 404],
  [RouteNotFoundError, 404],
  [MethodNotAllowedError, 405],
  [RequestTooLargeError, 413],
  [NotReadyError, 503],
  [InferenceFailedError, 500],
];

export function httpStatusOf(err: unknown): number {
  for (const [type, status] of HTTP_STATUS_OF) if (err instanceof type) return status;
  return 500;
}
