/**
 * Tensors of the Open Inference Protocol (JSON, or binary per the binary tensor data extension) ↔
 * onnxruntime tensors. This is the server's hot path: JSON inputs are copied once into a typed array
 * (checking each element), binary inputs are viewed or copied once, JSON outputs are serialized with
 * `join` on the typed array instead of building intermediate JS arrays, binary outputs are views.
 *
 * `parameters` pass through: the request's own parameters come back on the response, and each
 * requested output's parameters on that output, minus the binary extension's keys (`binary_data_output`,
 * `binary_data`), which the server acts on instead; a binary output carries `binary_data_size`.
 */
import * as ort from 'onnxruntime-node';
import { type BinaryCursor, binaryOfTensorData, type NumericArray, tensorDataFromBinary } from './binaryTensors';
import {
  float16BitsFromNumber,
  INTEGER_RANGES,
  isV2Datatype,
  numberFromFloat16Bits,
  ortTypeOf,
  type V2Datatype,
  v2DatatypeOf,
} from './datatypes';
import { InvalidInputError } from './errors';
import type { LoadedModel, TensorSignature } from './modelRepository';
import type { OutputTensor } from './modelScheduler';
import { checkParameterDepth, DEFAULT_MAX_BATCH, elementCountOf, MAX_RANK, preview } from './requestLimits';

export interface InferRequestBody {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: unknown[];
  outputs?: Array<{ name: string; parameters?: Record<string, unknown> }>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the request's envelope; tensors are checked against the model by `decodeInputs`. */
export function parseInferRequest(body: unknown): InferRequestBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('request body must be a JSON object with an "inputs" array');
  }
  const req = body as Record<string, unknown>;
  if (!Array.isArray(req.inputs) || req.inputs.length === 0) {
    throw new InvalidInputError('request body must have a non-empty "inputs" array');
  }
  if (req.id !== undefined && typeof req.id !== 'string') throw new InvalidInputError('"id" must be a string');
  if (req.parameters !== undefined) {
    if (!isPlainObject(req.parameters)) throw new InvalidInputError('"parameters" must be an object');
    checkParameterDepth(req.parameters, '"parameters"');
  }
  if (req.outputs !== undefined) {
    if (!Array.isArray(req.outputs)) throw new InvalidInputError('"outputs" must be an array of {"name": ...}');
    for (const [i, o] of req.outputs.entries()) {
      if (typeof o !== 'object' || o === null || typeof (o as { name?: unknown }).name !== 'string') {
        throw new InvalidInputError(`outputs[${i}] must be an object with a string "name"`);
      }
      const params = (o as { parameters?: unknown }).parameters;
      if (params !== undefined) {
        if (!isPlainObject(params)) throw new InvalidInputError(`outputs[${i}].parameters must be an object`);
        checkParameterDepth(params, `outputs[${i}].parameters`);
      }
    }
  }
  return req as unknown as InferRequestBody;
}

/** A shape for a message; a client's very long one is cut. */
export function formatShape(shape: readonly number[]): string {
  return shape.length > 16
    ? `[${shape.slice(0, 16).join(',')},… (${shape.length} dimensions)]`
    : `[${shape.join(',')}]`;
}

export interface DecodeLimits {
  /** Most rows along a first dimension the model leaves dynamic (see requestLimits.ts). */
  maxBatch: number;
}

const DEFAULT_LIMITS: DecodeLimits = { maxBatch: DEFAULT_MAX_BATCH };

/** Turns the request's inputs into onnxruntime feeds, naming exactly what does not fit the model. */
export function decodeInputs(
  model: LoadedModel,
  inputs: unknown[],
  binary?: BinaryCursor,
  limits: DecodeLimits = DEFAULT_LIMITS,
): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < inputs.length; i++) {
    const raw = inputs[i] as Record<string, unknown> | null;
    if (typeof raw !== 'object' || raw === null) throw new InvalidInputError(`inputs[${i}] must be an object`);
    const name = raw.name;
    if (typeof name !== 'string') throw new InvalidInputError(`inputs[${i}] must have a string "name"`);
    const signature = model.inputsByName.get(name);
    if (!signature) {
      throw new InvalidInputError(
        `model "${model.name}" has no input "${name}" (inputs: ${model.inputs.map((s) => s.name).join(', ')})`,
      );
    }
    if (name in feeds) throw new InvalidInputError(`input "${name}" is given twice`);
    feeds[name] = decodeInput(signature, raw, binary, limits);
  }
  binary?.checkConsumed();
  for (const signature of model.inputs) {
    if (!(signature.name in feeds)) {
      throw new InvalidInputError(
        `missing input "${signature.name}" (model "${model.name}" expects inputs: ${model.inputs.map((s) => s.name).join(', ')})`,
      );
    }
  }
  return feeds;
}

function decodeInput(
  signature: TensorSignature,
  raw: Record<string, unknown>,
  binary: BinaryCursor | undefined,
  limits: DecodeLimits,
): ort.Tensor {
  const { name } = signature;
  if (signature.datatype === undefined) {
    throw new InvalidInputError(`input "${name}" has a type the inference protocol cannot carry`);
  }
  const datatype = raw.datatype;
  if (!isV2Datatype(datatype)) throw new InvalidInputError(`input "${name}" has unknown datatype ${preview(datatype)}`);
  if (datatype !== signature.datatype) {
    throw new InvalidInputError(`input "${name}" expects datatype ${signature.datatype}, got ${datatype}`);
  }
  const shape = raw.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new InvalidInputError(
      `input "${name}" must have a "shape" array of non-negative integers, got ${preview(shape)}`,
    );
  }
  if (signature.shapeKnown && !shapeFits(signature.shape, shape)) {
    throw new InvalidInputError(
      `input "${name}" expects shape ${formatShape(signature.shape)}, got ${formatShape(shape)}`,
    );
  }
  const count = elementCountOf(name, shape, signature.shapeKnown && signature.shape[0] === -1, limits.maxBatch);
  const params = raw.parameters;
  if (params !== undefined && !isPlainObject(params))
    throw new InvalidInputError(`input "${name}" "parameters" must be an object`);
  const binarySize = params?.binary_data_size;
  if (binarySize !== undefined) {
    if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
      throw new InvalidInputError(
        `input "${name}" binary_data_size must be a non-negative integer, got ${preview(binarySize)}`,
      );
    }
    if (raw.data !== undefined)
      throw new InvalidInputError(`input "${name}" has both "data" and binary_data_size: send its elements one way`);
    if (!binary) {
      throw new InvalidInputError(
        `input "${name}" declares binary_data_size, but the request has no Inference-Header-Content-Length header saying where its JSON ends`,
      );
    }
    const data = tensorDataFromBinary(name, datatype, count, binary.take(name, binarySize as number));
    return new ort.Tensor(ortTypeOf(datatype) as 'float32', data as Float32Array, shape);
  }
  if (!Array.isArray(raw.data))
    throw new InvalidInputError(
      `input "${name}" must have a "data" array (or binary data: "parameters": {"binary_data_size": n})`,
    );
  // Nested data ([[1,2],[3,4]]) is accepted and flattened in row-major order, as deep as the shape's rank
  // and no deeper (an element still an array after that is refused as an element, not recursed into).
  const data: unknown[] =
    raw.data.length > 0 && Array.isArray(raw.data[0]) ? raw.data.flat(Math.min(shape.length, MAX_RANK) - 1) : raw.data;
  if (data.length !== count) {
    throw new InvalidInputError(
      `input "${name}" has shape ${formatShape(shape)} (${count} elements) but its data has ${data.length} elements`,
    );
  }
  return new ort.Tensor(ortTypeOf(datatype) as 'float32', toTensorData(name, datatype, data) as Float32Array, shape);
}

function shapeFits(expected: readonly number[], actual: readonly number[]): boolean {
  if (expected.length !== actual.length) return false;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== -1 && expected[i] !== actual[i]) return false;
  }
  return true;
}

type TensorData = NumericArray | string[];

/** A module-level function, not a closure: the dev loader's keepNames makes every closure cost a defineProperty. */
function badElement(name: string, datatype: V2Datatype, data: unknown[], i: number, what: string): never {
  throw new InvalidInputError(`input "${name}" (${datatype}) data[${i}] must be ${what}, got ${preview(data[i])}`);
}

function toTensorData(name: string, datatype: V2Datatype, data: unknown[]): TensorData {
  const n = data.length;
  switch (datatype) {
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (typeof v !== 'number') badElement(name, datatype, data, i, 'a number');
        out[i] = v as number;
      }
      return out;
    }
    case 'FP16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (typeof v !== 'number') badElement(name, datatype, data, i, 'a number');
        out[i] = float16BitsFromNumber(v as number);
      }
      return out;
    }
    case 'INT8':
    case 'INT16':
    case 'INT32':
    case 'UINT8':
    case 'UINT16':
    case 'UINT32': {
      const [min, max] = INTEGER_RANGES[datatype]!;
      const out = new TYPED_INTEGER_ARRAYS[datatype](n);
      for (let i = 0; i < n; i++) {
        const v = data[i] as number;
        if (!Number.isInteger(v) || v < min || v > max)
          badElement(name, datatype, data, i, `an integer in [${min}, ${max}]`);
        out[i] = v;
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const unsigned = datatype === 'UINT64';
      const out = unsigned ? new BigUint64Array(n) : new BigInt64Array(n);
      // Numbers beyond 2^53 lose precision in JSON.parse; digit strings are accepted for exact values.
      for (let i = 0; i < n; i++) {
        const v = data[i];
        let big: bigint | undefined;
        if (typeof v === 'number' && Number.isInteger(v)) big = BigInt(v);
        else if (typeof v === 'string' && /^-?\d+$/.test(v)) big = BigInt(v);
        const fits =
          big !== undefined && (unsigned ? big >= 0n && big < 1n << 64n : big >= -(1n << 63n) && big < 1n << 63n);
        if (!fits)
          badElement(
            name,
            datatype,
            data,
            i,
            unsigned
              ? 'an unsigned 64-bit integer (number or digit string)'
              : 'a 64-bit integer (number or digit string)',
          );
        out[i] = big!;
      }
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v === true || v === 1) out[i] = 1;
        else if (v !== false && v !== 0) badElement(name, datatype, data, i, 'true or false');
      }
      return out;
    }
    case 'BYTES': {
      for (let i = 0; i < n; i++) if (typeof data[i] !== 'string') badElement(name, datatype, data, i, 'a string');
      return data as string[];
    }
  }
}

const TYPED_INTEGER_ARRAYS = {
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
} as const;

/** Output names to fetch: the requested ones (checked) or all of the model's outputs. */
export function requestedOutputs(
  model: LoadedModel,
  outputs: Array<{ name: string }> | undefined,
): string[] | undefined {
  if (!outputs || outputs.length === 0) return undefined;
  const seen = new Set<string>();
  return outputs.map(({ name }) => {
    if (!model.outputNames.has(name)) {
      throw new InvalidInputError(
        `model "${model.name}" has no output "${name}" (outputs: ${model.outputs.map((s) => s.name).join(', ')})`,
      );
    }
    if (seen.has(name)) throw new InvalidInputError(`output "${name}" is asked for twice`);
    seen.add(name);
    return name;
  });
}

/** How a response is shaped beyond its tensors: binary outputs and parameters passed through. */
export interface ResponsePlan {
  /** `parameters.binary_data_output` of the request: every output binary unless it says otherwise. */
  binaryByDefault: boolean;
  /** Per requested output: binary or not (undefined: the default) and the parameters to echo. */
  outputs: Map<string, { binary: boolean | undefined; parameters: Record<string, unknown> | undefined }>;
  /** The request's parameters to echo on the response. */
  parameters: Record<string, unknown> | undefined;
}

/** undefined for the common case: JSON outputs and no parameters anywhere. */
export function responsePlanOf(body: InferRequestBody): ResponsePlan | undefined {
  if (!body.parameters && !body.outputs?.some((o) => o.parameters)) return undefined;
  const plan: ResponsePlan = { binaryByDefault: false, outputs: new Map(), parameters: undefined };
  if (body.parameters) {
    const { binary_data_output: binaryOutput, ...rest } = body.parameters;
    if (binaryOutput !== undefined && typeof binaryOutput !== 'boolean') {
      throw new InvalidInputError(`parameters.binary_data_output must be true or false, got ${preview(binaryOutput)}`);
    }
    plan.binaryByDefault = binaryOutput === true;
    if (Object.keys(rest).length) plan.parameters = rest;
  }
  for (const o of body.outputs ?? []) {
    if (!o.parameters) continue;
    const { binary_data: binary, ...rest } = o.parameters;
    if (binary !== undefined && typeof binary !== 'boolean') {
      throw new InvalidInputError(
        `output "${o.name}" parameters.binary_data must be true or false, got ${preview(binary)}`,
      );
    }
    plan.outputs.set(o.name, {
      binary: binary as boolean | undefined,
      parameters: Object.keys(rest).length ? rest : undefined,
    });
  }
  return plan;
}

export interface EncodedResponse {
  /** The JSON document (the whole body when `binary` is empty). */
  json: string;
  /** Binary sections in output order; when present the body is json + these, with an Inference-Header-Content-Length. */
  binary: Buffer[];
}

/** Serializes the response directly to JSON text (typed arrays never become JS arrays). */
export function encodeInferResponse(
  model: LoadedModel,
  id: string | undefined,
  results: Record<string, OutputTensor>,
  plan?: ResponsePlan,
  /** The outputs the request named, in its order (onnxruntime answers in the model's order). */
  order?: readonly string[],
): EncodedResponse {
  let outputs = '';
  const binary: Buffer[] = [];
  for (const name of order ?? Object.keys(results)) {
    const tensor = results[name];
    const datatype = v2DatatypeOf(tensor.type);
    if (datatype === undefined)
      throw new Error(`output "${name}" has type ${tensor.type}, which the inference protocol cannot carry`);
    if (outputs) outputs += ',';
    const head = `{"name":${JSON.stringify(name)},"datatype":"${datatype}","shape":[${tensor.dims.join(',')}]`;
    if (!plan) {
      outputs += `${head},"data":[${encodeData(datatype, tensor.data)}]}`;
      continue;
    }
    const asked = plan.outputs.get(name);
    const params: Record<string, unknown> = { ...asked?.parameters };
    if (asked?.binary ?? plan.binaryByDefault) {
      const bytes = binaryOfTensorData(datatype, tensor.data as ArrayLike<unknown>);
      binary.push(bytes);
      params.binary_data_size = bytes.length;
      outputs += `${head},"parameters":${JSON.stringify(params)}}`;
    } else {
      const echoed = Object.keys(params).length ? `,"parameters":${JSON.stringify(params)}` : '';
      outputs += `${head}${echoed},"data":[${encodeData(datatype, tensor.data)}]}`;
    }
  }
  const idField = id === undefined ? '' : `,"id":${JSON.stringify(id)}`;
  const paramsField = plan?.parameters ? `,"parameters":${JSON.stringify(plan.parameters)}` : '';
  return {
    json: `{"model_name":${JSON.stringify(model.name)},"model_version":${JSON.stringify(model.version)}${idField}${paramsField},"outputs":[${outputs}]}`,
    binary,
  };
}

function encodeData(datatype: V2Datatype, data: ort.Tensor['data']): string {
  switch (datatype) {
    case 'BYTES': {
      const json = JSON.stringify(data);
      return json.slice(1, -1);
    }
    case 'BOOL':
      return Array.prototype.map.call(data as Uint8Array, (v: number) => (v ? 'true' : 'false')).join(',');
    case 'FP16':
      return finiteOrNull(Array.prototype.map.call(data as Uint16Array, numberFromFloat16Bits).join(','), data.length);
    case 'FP32':
    case 'FP64':
      return finiteOrNull((data as Float32Array).join(','), data.length);
    default:
      // Integer typed arrays (including BigInt64Array) join as exact decimal digits.
      return (data as Int32Array).join(',');
  }
}

/** JSON has no NaN or Infinity; like JSON.stringify, send null for them (only rebuilt when present). */
function finiteOrNull(joined: string, length: number): string {
  if (!/[NI]/.test(joined)) return joined;
  return joined
    .split(',', length)
    .map((s) => (s === 'NaN' || s === 'Infinity' || s === '-Infinity' ? 'null' : s))
    .join(',');
}
