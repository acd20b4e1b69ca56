/**
 * fp16-weights: float32 weights stored as float16.
 *
 * - options.ts: what a caller may set, and reading it from a plan;
 * - weightsOnly.ts: the default (CPU targets): weights stored as float16, computed in float32 behind Casts;
 * - fullCompute.ts: `{ compute: 'fp16' }` (GPU targets): the graph computes in float16 outside a block list;
 * - technique.ts: the technique the engine runs (agreement with the original, notes).
 */
export {
  convertToFloat16Compute,
  cpuFloat16Fallbacks,
  DEFAULT_FP16_BLOCK_LIST,
  type Fp16ComputeReport,
} from './fullCompute';
export type { Fp16Options } from './options';
export { FP16_WEIGHTS_ID, fp16WeightsTechnique } from './technique';
export { type Fp16WeightsReport, storeWeightsAsFloat16 } from './weightsOnly';
