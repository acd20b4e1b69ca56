/**
 * INT8 static quantization in QDQ form: QuantizeLinear/DequantizeLinear pairs around Conv, MatMul and Gemm (and the
 * Adds after them), with activation ranges measured on calibration data, so that onnxruntime fuses each group into
 * its integer kernels when it loads the model.
 *
 * - options.ts: what a caller may set, and reading it from a plan;
 * - plan.ts: which nodes are quantized, how, and why the others are not;
 * - qdqRewrite.ts: the Q/DQ pairs, int8 weights and int32 biases the rewrite writes;
 * - quantize.ts: the whole pass (plan, opset upgrade, calibration in ../calibration.ts, rewrite);
 * - technique.ts: the technique the engine runs (fusion check, agreement with the original).
 */
export type { Int8StaticOptions, QuantizableOp } from './options';
export { planStaticQuantization } from './plan';
export type { QuantizedActivation } from './qdqRewrite';
export {
  type Int8StaticReport,
  NotQuantizable,
  quantizeStaticQdq,
  type StaticQuantizationInput,
  type StaticQuantizedNode,
  unfusedQdqNodes,
} from './quantize';
export { INT8_STATIC_ID, int8Static } from './technique';
