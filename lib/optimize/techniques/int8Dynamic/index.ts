/**
 * INT8 dynamic quantization of MatMul and Gemm weights, for CPU targets: int8 weights run by onnxruntime's
 * DynamicQuantizeMatMul, which quantizes the activations at run time.
 *
 * - options.ts: what a caller may set, and reading it from a plan;
 * - quantizer.ts: the graph rewrite;
 * - technique.ts: the technique the engine runs (agreement with the original, notes).
 * The weight arithmetic is in ../quantization.ts.
 */
export { type QuantizedWeight, quantizeWeightSymmetric } from '../quantization';
export type { Int8DynamicOptions } from './options';
export {
  type Int8DynamicReport,
  MICROSOFT_DOMAIN,
  type QuantizedNodeReport,
  quantizeDynamicInt8,
  type SkippedNodeReport,
} from './quantizer';
export { INT8_DYNAMIC_ID, int8DynamicTechnique } from './technique';
