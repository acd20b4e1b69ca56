/**
 * What the inference server's layers throw when a request cannot be served as asked: one type per kind
 * of failure, none of them knowing HTTP. inferenceServer.ts maps each type to its status in one place
 * (httpStatusOf), the way KServe's protocol layer maps its InvalidInput, ModelNotFound, ... exceptions.
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
