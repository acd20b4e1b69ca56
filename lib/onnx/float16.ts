/**
 * IEEE 754 half precision (FLOAT16): float32 → float16 bits with round-to-nearest-even (what numpy's
 * astype(float16) does), the way back, and FLOAT16 tensors with their values in raw_data.
 */
import type { TensorProto } from './model';
import { elementCount, float16BitsToFloat32, TensorDataType } from './tensor';

/** Largest finite float16 value. */
export const FLOAT16_MAX = 65504;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bit pattern nearest to `value` (ties to even); ±Infinity beyond the float16 range, NaN stays NaN. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const halfExp = exp - 112; // rebias 127 → 15
  if (halfExp >= 31) return sign | 0x7c00;
  if (halfExp <= 0) {
    // Subnormal half (or zero): the value in units of 2^-24 is the 24-bit significand shifted right.
    const shift = 126 - exp;
    if (shift > 24) return sign;
    const m = mant | 0x800000;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (halfExp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and at the top of the range gives Infinity: both correct.
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export { float16BitsToFloat32 } from './tensor';

export function float32ArrayToFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

/** The largest |v − float16(v)| over `values`: what storing them in half precision costs. */
export function float16RoundingError(values: Float32Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const e = Math.abs(values[i] - float16BitsToFloat32(float32ToFloat16Bits(values[i])));
    if (e > max) max = e;
  }
  return max;
}

/** A FLOAT16 tensor holding `values` rounded to half precision, in raw_data. */
export function float16Tensor(name: string, dims: readonly number[], values: Float32Array): TensorProto {
  if (values.length !== elementCount(dims)) {
    throw new Error(`float16Tensor ${name}: ${values.length} values do not fill dims [${dims.join(', ')}]`);
  }
  const bits = float32ArrayToFloat16Bits(values);
  return { name, dims: [...dims], data_type: TensorDataType.FLOAT16, raw_data: new Uint8Array(bits.buffer) };
}
