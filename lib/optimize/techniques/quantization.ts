/**
 * Quantization arithmetic the int8 techniques share: rounding the way onnxruntime's own quantizer rounds,
 * symmetric int8 weights (one scale per channel or per tensor), asymmetric 8-bit activations, and the integer
 * tensors that hold the results.
 */
import type { TensorProto } from '../../onnx/model';
import { elementCount, TensorDataType } from '../../onnx/tensor';

/** The 8-bit type activations are quantized to. */
export type ActivationType = 'uint8' | 'int8';

/** Rounds half to even, as numpy.rint does, so values land where onnxruntime's own quantizer puts them. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The largest |q| of a symmetric int8 weight: 127, or 63 with `reduceRange` (7-bit weights, for CPUs without
 * VNNI, whose u8×s8 instructions can saturate int16 intermediate sums).
 */
export function weightQmax(reduceRange: boolean): number {
  return reduceRange ? 63 : 127;
}

/** The integer range [qmin, qmax] of an activation type. */
export function activationRange(type: ActivationType): [number, number] {
  return type === 'uint8' ? [0, 255] : [-128, 127];
}

/** Scale and zero point mapping [min(0, lo), max(0, hi)] onto the full range of the activation type. */
export function activationQuantParams(
  range: { min: number; max: number },
  type: ActivationType,
): { scale: number; zeroPoint: number } {
  const [qmin, qmax] = activationRange(type);
  const lo = Math.min(0, range.min);
  const hi = Math.max(0, range.max);
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: 0 };
  const zp = roundHalfEven(qmin - lo / scale);
  return { scale, zeroPoint: Math.min(qmax, Math.max(qmin, zp)) };
}

/** `values` quantized with an activation's scale and zero point, clamped to the type's range. */
export function quantizeAsymmetric(
  values: Float32Array,
  params: { scale: number; zeroPoint: number },
  type: ActivationType,
): Int32Array {
  const [qmin, qmax] = activationRange(type);
  return Int32Array.from(values, (v) =>
    Math.min(qmax, Math.max(qmin, roundHalfEven(v / params.scale) + params.zeroPoint)),
  );
}

/**
 * Symmetric int8 quantization of a weight along `axis` (or per tensor when axis is undefined):
 * scale = max |w| / qmax per channel, zero point 0.
 */
export function quantizeWeightPerAxis(
  values: Float32Array,
  dims: number[],
  axis: number | undefined,
  qmax = 127,
): { q: Int8Array; scales: Float32Array } {
  const channels = axis === undefined ? 1 : dims[axis];
  const inner = axis === undefined ? values.length : elementCount(dims.slice(axis + 1));
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const absMax = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i);
    const v = Math.abs(values[i]);
    if (v > absMax[c]) absMax[c] = v;
  }
  const scales = Float32Array.from(absMax, (m) => (m > 0 && Number.isFinite(m) ? m / qmax : 1));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const r = roundHalfEven(values[i] / scales[channelOf(i)]);
    q[i] = r > qmax ? qmax : Math.max(r, -qmax);
  }
  return { q, scales };
}

export interface QuantizedWeight {
  /** int8 values, [K, N] row-major. */
  values: Int8Array;
  /** One scale per column (length N), or a single one for per-tensor quantization. */
  scales: Float32Array;
  k: number;
  n: number;
}

/**
 * Symmetric int8 quantization of a weight as MatMul reads it ([K, N]): scale = max|column| / qmax, zero point 0.
 * `transposed`: the data is stored [N, K] (Gemm with transB = 1) and is transposed on the way.
 */
export function quantizeWeightSymmetric(
  data: Float32Array,
  k: number,
  n: number,
  opts: { transposed?: boolean; perChannel?: boolean; reduceRange?: boolean } = {},
): QuantizedWeight {
  const perChannel = opts.perChannel ?? true;
  const qmax = weightQmax(opts.reduceRange ?? false);
  if (!opts.transposed) {
    const { q, scales } = quantizeWeightPerAxis(data, [k, n], perChannel ? 1 : undefined, qmax);
    return { values: q, scales, k, n };
  }
  // Stored [N, K]: the output channels are its rows.
  const { q, scales } = quantizeWeightPerAxis(data, [n, k], perChannel ? 0 : undefined, qmax);
  const values = new Int8Array(k * n);
  for (let row = 0; row < k; row++) for (let col = 0; col < n; col++) values[row * n + col] = q[col * k + row];
  return { values, scales, k, n };
}

/** A tensor whose raw_data is the bytes of `values` (viewed, not copied). */
function integerTensor(
  name: string,
  dims: number[],
  dataType: TensorDataType,
  values: Int8Array | Int16Array | Int32Array | Uint8Array,
): TensorProto {
  return {
    name,
    dims,
    data_type: dataType,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

export function int8Tensor(name: string, dims: number[], values: Int8Array): TensorProto {
  return integerTensor(name, dims, TensorDataType.INT8, values);
}

export function int16Tensor(name: string, dims: number[], values: Int16Array): TensorProto {
  return integerTensor(name, dims, TensorDataType.INT16, values);
}

export function int32Tensor(name: string, dims: number[], values: Int32Array): TensorProto {
  return integerTensor(name, dims, TensorDataType.INT32, values);
}

/** Quantized activation values (already in the type's range) as a UINT8 or INT8 tensor. */
export function activationTensor(
  name: string,
  dims: number[],
  type: ActivationType,
  values: ArrayLike<number>,
): TensorProto {
  return type === 'uint8'
    ? integerTensor(name, dims, TensorDataType.UINT8, Uint8Array.from(values))
    : integerTensor(name, dims, TensorDataType.INT8, Int8Array.from(values));
}

/** A scalar zero point of an activation type. */
export function zeroPointTensor(name: string, type: ActivationType, zeroPoint: number): TensorProto {
  return activationTensor(name, [], type, [zeroPoint]);
}
