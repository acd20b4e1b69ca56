/**
 * One inference from a parsed request body, the same for every way a request reaches a model: decode
 * the inputs against the model, run them through its scheduler, encode the response. The HTTP server
 * (inferenceServer.ts) and the batch runner (runtime/batch) both call this, so a request file and an
 * HTTP request get the same checks and the same answer.
 */
import type { BinaryCursor } from './binaryTensors';
import { InvalidInputError } from './errors';
import type { LoadedModel } from './modelRepository';
import type { InferOutcome, ModelScheduler } from './modelScheduler';
import {
  type DecodeLimits,
  decodeInputs,
  type EncodedResponse,
  encodeInferResponse,
  type InferRequestBody,
  requestedOutputs,
  responsePlanOf,
} from './tensorCodec';

export interface InferResult {
  encoded: EncodedResponse;
  outcome: InferOutcome;
}

/** `id`: the response's id when the request has none. */
export async function inferParsedRequest(
  model: LoadedModel,
  scheduler: ModelScheduler,
  body: InferRequestBody,
  id: string,
  binary?: BinaryCursor,
  limits?: DecodeLimits,
): Promise<InferResult> {
  const feeds = decodeInputs(model, body.inputs, binary, limits);
  const fetches = requestedOutputs(model, body.outputs);
  const plan = responsePlanOf(body);
  let outcome: InferOutcome;
  try {
    outcome = await scheduler.infer(feeds, fetches);
  } catch (err) {
    throw onnxRuntimeFailure(err as Error);
  }
  return { outcome, encoded: encodeInferResponse(model, body.id ?? id, outcome.outputs, plan, fetches) };
}

/**
 * onnxruntime rejects some bad inputs only at run time (e.g. models without declared shapes), and
 * onnxruntime-node throws plain Errors for them with no code or type to tell them apart from its own
 * failures. So here, and only here, the message decides: the ones that name the input's shape, rank or
 * type are the request's fault (InvalidInputError, 400); anything else stays a server failure.
 */
function onnxRuntimeFailure(err: Error): Error {
  if (
    /invalid (dimensions|rank)|Got invalid|unexpected input data type|shape mismatch|out of (data )?bounds/i.test(
      err.message,
    )
  ) {
    return new InvalidInputError(`the model rejected the input: ${err.message}`);
  }
  return err;
}
