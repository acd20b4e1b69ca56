/** Deterministic inputs for a model from its input specs, so two models are compared on the same data. */
import * as ort from 'onnxruntime-node';
import { seededUniform } from '../seededRandom';
import type { Feeds, FeedTensor } from './technique';
import type { TensorSpec } from './types';

export function concreteShape(spec: TensorSpec, batchSize: number): number[] {
  return spec.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? batchSize : 1));
}

/** The seeded PRNG the generated models use too: the same seed gives the same inputs on every run. */
export const seededRandom = seededUniform;

export function sampleInputs(specs: TensorSpec[], batchSize = 1, seed = 42): Record<string, ort.Tensor> {
  const rand = seededRandom(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of specs) {
    const shape = concreteShape(spec, batchSize);
    const n = shape.reduce((a, b) => a * b, 1);
    switch (spec.dataType) {
      case 'FP32':
        feeds[spec.name] = new ort.Tensor(
          'float32',
          Float32Array.from({ length: n }, () => rand() * 2 - 1),
          shape,
        );
        break;
      case 'FP64':
        feeds[spec.name] = new ort.Tensor(
          'float64',
          Float64Array.from({ length: n }, () => rand() * 2 - 1),
          shape,
        );
        break;
      case 'INT64':
        feeds[spec.name] = new ort.Tensor(
          'int64',
          BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 4))),
          shape,
        );
        break;
      case 'INT32':
        feeds[spec.name] = new ort.Tensor(
          'int32',
          Int32Array.from({ length: n }, () => Math.floor(rand() * 4)),
          shape,
        );
        break;
      case 'BOOL':
        feeds[spec.name] = new ort.Tensor(
          'bool',
          Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)),
          shape,
        );
        break;
      default:
        throw new Error(`cannot generate sample data for input "${spec.name}" of type ${spec.dataType}`);
    }
  }
  return feeds;
}

/** A user-fixed input value (e.g. a sample rate), in JSON: `{ "type": "int64", "dims": [], "data": [16000] }`. */
export interface FixedInputJson {
  type?: FeedTensor['type'];
  dims: number[];
  data: number[];
}

export interface FeedOptions {
  /** Size of the batch dim (axis 0 of the inputs, and every other dim with the same symbolic name). */
  batch: number;
  seed: number;
  /** Sizes for symbolic dims by name (e.g. { sequence: 512 }). */
  dims?: Record<string, number>;
  /** Size for other dynamic dims that are not the batch dim; default 16 (a short sequence). */
  defaultDim?: number;
  /** Inputs given by the user, used as they are (batch-1 values are repeated along the batch dim). */
  fixed?: Record<string, FixedInputJson>;
}

/** onnxruntime's tensor type of each Ferry datatype a feed can have. */
export const ORT_TYPE_OF_SPEC: Record<string, FeedTensor['type']> = {
  FP32: 'float32',
  FP64: 'float64',
  INT64: 'int64',
  INT32: 'int32',
  BOOL: 'bool',
  UINT8: 'uint8',
  INT8: 'int8',
};

/** The symbolic name of the batch dim: the name axis 0 of the inputs carries ('' when axis 0 is unnamed). */
export function batchDimName(specs: TensorSpec[]): string | undefined {
  for (const s of specs) {
    const d = s.shape[0];
    if (s.shape.length > 0 && typeof d === 'string') return d;
  }
  return specs.some(
    (s) => s.shape.length > 0 && (s.shape[0] === null || (typeof s.shape[0] === 'number' && s.shape[0] <= 0)),
  )
    ? ''
    : undefined;
}

/** Can requests be batched? Every input with dims has a dynamic axis 0 or a dim named like the batch dim. */
export function isBatchDynamic(specs: TensorSpec[]): boolean {
  const name = batchDimName(specs);
  if (name === undefined) return false;
  return specs.every(
    (s) => s.shape.length === 0 || typeof s.shape[0] !== 'number' || (name !== '' && s.shape.includes(name)),
  );
}

export function feedShape(spec: TensorSpec, opts: FeedOptions, batchName = batchDimName([spec])): number[] {
  return spec.shape.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (typeof d === 'string' && opts.dims?.[d] !== undefined) return opts.dims[d]!;
    if (typeof d === 'string' && batchName && d === batchName) return opts.batch;
    if (i === 0) return opts.batch;
    return opts.defaultDim ?? 16;
  });
}

/**
 * Deterministic inputs as plain typed arrays. Floats are uniform in [-1, 1); integers are small
 * (0 or 1) so that they are valid indices for any embedding or one-hot table, except inputs named like
 * an attention mask (all 1) or token types / segments (all 0). Fixed inputs win over generated ones.
 */
export function generateFeeds(specs: TensorSpec[], opts: FeedOptions): Feeds {
  const rand = seededRandom(opts.seed);
  const batchName = batchDimName(specs);
  const feeds: Feeds = {};
  for (const spec of specs) {
    const fixed = opts.fixed?.[spec.name];
    const type = fixed?.type ?? ORT_TYPE_OF_SPEC[spec.dataType];
    if (!type)
      throw new Error(
        `cannot generate sample data for input "${spec.name}" of type ${spec.dataType}; give it with fixed inputs`,
      );
    if (fixed) {
      feeds[spec.name] = fixedFeed(
        spec.name,
        type,
        fixed,
        opts.batch,
        batchName !== undefined && spec.shape.length > 0,
      );
      continue;
    }
    const dims = feedShape(spec, opts, batchName);
    const n = dims.reduce((a, b) => a * b, 1);
    const lower = spec.name.toLowerCase();
    const intValue = lower.includes('mask')
      ? () => 1
      : /token_type|segment/.test(lower)
        ? () => 0
        : () => Math.floor(rand() * 2);
    feeds[spec.name] = { type, dims, data: makeArray(type, n, () => (isFloat(type) ? rand() * 2 - 1 : intValue())) };
  }
  return feeds;
}

function isFloat(type: FeedTensor['type']): boolean {
  return type === 'float32' || type === 'float64';
}

function makeArray(type: FeedTensor['type'], n: number, value: (i: number) => number): FeedTensor['data'] {
  switch (type) {
    case 'float32':
      return Float32Array.from({ length: n }, (_, i) => value(i));
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => value(i));
    case 'int64':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.round(value(i))));
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => Math.round(value(i)));
    case 'int8':
      return Int8Array.from({ length: n }, (_, i) => Math.round(value(i)));
    case 'bool':
    case 'uint8':
      return Uint8Array.from({ length: n }, (_, i) => Math.round(value(i)));
  }
}

function fixedFeed(
  name: string,
  type: FeedTensor['type'],
  fixed: FixedInputJson,
  batch: number,
  batched: boolean,
): FeedTensor {
  const n = fixed.dims.reduce((a, b) => a * b, 1);
  if (fixed.data.length !== n)
    throw new Error(`fixed input "${name}": ${fixed.data.length} values for dims [${fixed.dims.join(', ')}]`);
  // A batch-1 value given for a batched input is repeated along axis 0.
  const repeat = batched && fixed.dims[0] === 1 && batch > 1 ? batch : 1;
  const dims = repeat > 1 ? [batch, ...fixed.dims.slice(1)] : [...fixed.dims];
  return { type, dims, data: makeArray(type, n * repeat, (i) => fixed.data[i % n]!) };
}

/** onnxruntime tensors from plain feeds. */
export function toOrtFeeds(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, f] of Object.entries(feeds)) out[name] = new ort.Tensor(f.type, f.data as never, f.dims);
  return out;
}

/** Feeds as JSON-safe data (base64 bytes), for handing them to a measuring child process. */
export interface FeedTensorWire {
  type: FeedTensor['type'];
  dims: number[];
  base64: string;
}

export function feedsToWire(feeds: Feeds): Record<string, FeedTensorWire> {
  const out: Record<string, FeedTensorWire> = {};
  for (const [name, f] of Object.entries(feeds)) {
    out[name] = {
      type: f.type,
      dims: f.dims,
      base64: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength).toString('base64'),
    };
  }
  return out;
}

export function feedsFromWire(wire: Record<string, FeedTensorWire>): Feeds {
  const out: Feeds = {};
  for (const [name, w] of Object.entries(wire)) {
    const bytes = Buffer.from(w.base64, 'base64');
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const data =
      w.type === 'float32'
        ? new Float32Array(buf)
        : w.type === 'float64'
          ? new Float64Array(buf)
          : w.type === 'int64'
            ? new BigInt64Array(buf)
            : w.type === 'int32'
              ? new Int32Array(buf)
              : w.type === 'int8'
                ? new Int8Array(buf)
                : new Uint8Array(buf);
    out[name] = { type: w.type, dims: w.dims, data };
  }
  return out;
}
