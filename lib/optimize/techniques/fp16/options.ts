/** Options of fp16-weights: what a caller may set, and reading them from a plan. */
import { nonNegativeOption, type RawOptions } from '../adapter';

export interface Fp16Options {
  /** 'fp32' (default): weights stored as float16, computed in float32. 'fp16': full float16 compute (GPU targets). */
  compute?: 'fp32' | 'fp16';
  /** Full-fp16 compute: op types kept in float32, in addition to DEFAULT_FP16_BLOCK_LIST. */
  blockList?: string[];
  /** Weights-only mode: tensors with fewer elements stay float32 (default 16: scalars such as epsilons keep their precision). */
  minElements?: number;
}

/** The technique's options from a plan; throws what is wrong with them. */
export function readOptions(raw: RawOptions | undefined): Fp16Options {
  const o = raw ?? {};
  const out: Fp16Options = {};
  if (o.compute !== undefined) {
    if (o.compute !== 'fp16' && o.compute !== 'fp32')
      throw new Error("option compute must be 'fp32' (weights only) or 'fp16' (full float16 compute)");
    out.compute = o.compute;
  }
  if (o.blockList !== undefined) {
    if (!Array.isArray(o.blockList) || !o.blockList.every((t) => typeof t === 'string'))
      throw new Error('option blockList must be a list of op types');
    out.blockList = o.blockList as string[];
  }
  const minElements = nonNegativeOption(o, 'minElements');
  if (minElements !== undefined) out.minElements = minElements;
  return out;
}
