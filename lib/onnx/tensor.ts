/** Tensor data types and the conversions Ferry needs between TensorProto and JS typed arrays. */
import { endianness } from 'node:os';
import type { Int64, TensorProto } from './model';

/** ONNX TensorProto.DataType. */
export enum TensorDataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
  FLOAT8E4M3FN = 17,
  FLOAT8E4M3FNUZ = 18,
  FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20,
  UINT4 = 21,
  INT4 = 22,
  FLOAT4E2M1 = 23,
  FLOAT8E8M0 = 24,
  UINT2 = 25,
  INT2 = 26,
  FLOAT6E2M3 = 27,
  FLOAT6E3M2 = 28,
}

export enum TensorDataLocation {
  DEFAULT = 0,
  EXTERNAL = 1,
}

// raw_data is little-endian by spec; we view it through typed arrays, which use the host's byte order.
if (endianness() !== 'LE') throw new Error('lib/onnx assumes a little-endian host');

const BITS_PER_ELEMENT: Partial<Record<TensorDataType, number>> = {
  [TensorDataType.FLOAT]: 32,
  [TensorDataType.UINT8]: 8,
  [TensorDataType.INT8]: 8,
  [TensorDataType.UINT16]: 16,
  [TensorDataType.INT16]: 16,
  [TensorDataType.INT32]: 32,
  [TensorDataType.INT64]: 64,
  [TensorDataType.BOOL]: 8,
  [TensorDataType.FLOAT16]: 16,
  [TensorDataType.DOUBLE]: 64,
  [TensorDataType.UINT32]: 32,
  [TensorDataType.UINT64]: 64,
  [TensorDataType.COMPLEX64]: 64,
  [TensorDataType.COMPLEX128]: 128,
  [TensorDataType.BFLOAT16]: 16,
  [TensorDataType.FLOAT8E4M3FN]: 8,
  [TensorDataType.FLOAT8E4M3FNUZ]: 8,
  [TensorDataType.FLOAT8E5M2]: 8,
  [TensorDataType.FLOAT8E5M2FNUZ]: 8,
  [TensorDataType.UINT4]: 4,
  [TensorDataType.INT4]: 4,
  [TensorDataType.FLOAT4E2M1]: 4,
  [TensorDataType.FLOAT8E8M0]: 8,
  [TensorDataType.UINT2]: 2,
  [TensorDataType.INT2]: 2,
  [TensorDataType.FLOAT6E2M3]: 6,
  [TensorDataType.FLOAT6E3M2]: 6,
};

/** Bits one element occupies in raw_data; undefined for STRING and unknown types (no fixed width). */
export function bitsPerElement(dataType: number): number | undefined {
  return BITS_PER_ELEMENT[dataType as TensorDataType];
}

export function dataTypeName(dataType: number): string {
  return TensorDataType[dataType] ?? `DATA_TYPE_${dataType}`;
}

/** Number of elements a tensor with these dims holds (1 for a scalar). May exceed 2^53 for bogus dims. */
export function elementCount(dims: readonly number[] | undefined): number {
  let n = 1;
  for (const d of dims ?? []) n *= Number(d);
  return n;
}

/** Bytes `count` elements of this type take in raw_data (sub-byte types are packed, low bits first). */
export function rawByteLength(dataType: number, count: number): number | undefined {
  const bits = bitsPerElement(dataType);
  return bits === undefined ? undefined : Math.ceil((count * bits) / 8);
}

export function isExternal(t: TensorProto): boolean {
  return t.data_location === TensorDataLocation.EXTERNAL;
}

export function externalDataEntry(t: TensorProto, key: string): string | undefined {
  return t.external_data?.find((e) => e.key === key)?.value;
}

/** Bytes the tensor's values take when stored raw: what it weighs on disk or in memory, not its protobuf size. */
export function tensorByteSize(t: TensorProto): number {
  if (t.raw_data && t.raw_data.length > 0) return t.raw_data.length;
  const count = elementCount(t.dims);
  if (isExternal(t)) {
    const length = Number(externalDataEntry(t, 'length'));
    if (Number.isFinite(length) && length >= 0) return length;
  }
  if (t.data_type === TensorDataType.STRING) return (t.string_data ?? []).reduce((a, s) => a + s.length, 0);
  return rawByteLength(t.data_type ?? 0, count) ?? 0;
}

/** A copy of raw bytes in a fresh, aligned buffer, so typed-array views of any width are allowed. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

/** IEEE 754 half-precision bits → number (float16.ts has the other direction). */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/**
 * The tensor's values as float32, from raw_data or the typed field. Converts FLOAT16, BFLOAT16 and DOUBLE;
 * throws for external data (the bytes are not in the model) and for non-float types.
 */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const name = t.name || '(unnamed)';
  if (isExternal(t)) throw new Error(`tensor ${name} keeps its data in an external file; load it first`);
  const dt = t.data_type ?? TensorDataType.UNDEFINED;
  const raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : undefined;
  switch (dt) {
    case TensorDataType.FLOAT:
      return raw ? new Float32Array(alignedCopy(raw)) : Float32Array.from(t.float_data ?? []);
    case TensorDataType.DOUBLE:
      return Float32Array.from(raw ? new Float64Array(alignedCopy(raw)) : (t.double_data ?? []));
    case TensorDataType.FLOAT16: {
      // Without raw_data, float16 bits live in int32_data, one per entry.
      const bits = raw ? new Uint16Array(alignedCopy(raw)) : Uint16Array.from(t.int32_data ?? []);
      return Float32Array.from(bits, float16BitsToFloat32);
    }
    case TensorDataType.BFLOAT16: {
      const bits = raw ? new Uint16Array(alignedCopy(raw)) : Uint16Array.from(t.int32_data ?? []);
      return new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer);
    }
    default:
      throw new Error(`tensor ${name} is ${dataTypeName(dt)}, not a floating-point type`);
  }
}

/** A FLOAT tensor with its values in raw_data (how exporters store weights: compact and fast to read). */
export function float32Tensor(
  name: string,
  dims: readonly number[],
  data: Float32Array | readonly number[],
): TensorProto {
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  if (values.length !== elementCount(dims)) {
    throw new Error(`float32Tensor ${name}: ${values.length} values do not fill dims [${dims.join(', ')}]`);
  }
  return {
    name,
    dims: [...dims],
    data_type: TensorDataType.FLOAT,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
  };
}

/** Replaces a tensor's values (and its dims, when given) with float32 `values`, stored in raw_data. */
export function setFloat32Values(t: TensorProto, values: Float32Array, dims?: readonly number[]): void {
  if (dims) t.dims = [...dims];
  t.data_type = TensorDataType.FLOAT;
  t.raw_data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
  t.float_data = [];
}

/** An INT64 tensor (shapes, axes, indices) with its values in raw_data. */
export function int64Tensor(name: string, dims: readonly number[], data: readonly Int64[]): TensorProto {
  if (data.length !== elementCount(dims)) {
    throw new Error(`int64Tensor ${name}: ${data.length} values do not fill dims [${dims.join(', ')}]`);
  }
  const values = BigInt64Array.from(data, (v) => BigInt(v));
  return { name, dims: [...dims], data_type: TensorDataType.INT64, raw_data: new Uint8Array(values.buffer) };
}

/** INT64 tensor values as bigints, from raw_data or int64_data. */
export function tensorToBigInt64(t: TensorProto): BigInt64Array {
  if (t.data_type !== TensorDataType.INT64) throw new Error(`tensor ${t.name || '(unnamed)'} is not INT64`);
  if (t.raw_data && t.raw_data.length > 0) return new BigInt64Array(alignedCopy(t.raw_data));
  return BigInt64Array.from(t.int64_data ?? [], (v) => BigInt(v));
}
