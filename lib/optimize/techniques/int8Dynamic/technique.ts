/**
 * int8-dynamic as an optimization technique: quantizes (quantizer.ts), checks the result against the original in
 * onnxruntime, and says in its notes what changed and what stayed float32.
 */
import type { ModelAnalysis } from '../../../onnx/analyze';
import type { OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../../technique';
import { mb } from '../adapter';
import { checkCandidate } from '../verifyCandidate';
import { type Int8DynamicOptions, readOptions } from './options';
import { quantizeDynamicInt8 } from './quantizer';

export const INT8_DYNAMIC_ID = 'int8-dynamic';

function countMatMulGemm(analysis: ModelAnalysis): number {
  return (analysis.opHistogram.MatMul ?? 0) + (analysis.opHistogram.Gemm ?? 0);
}

export const int8DynamicTechnique: OptimizationTechnique = {
  id: INT8_DYNAMIC_ID,
  title: 'INT8 dynamic quantization (MatMul/Gemm)',
  description:
    "Stores MatMul and Gemm weights as int8 with one scale per output channel and runs them with onnxruntime's DynamicQuantizeMatMul, which quantizes activations at run time; no calibration data needed.",
  expectedEffect(analysis: ModelAnalysis, target: TargetSpec): string {
    const count = countMatMulGemm(analysis);
    if (count === 0) return 'Nothing to do: the model has no MatMul or Gemm.';
    const where = target.kind === 'gpu' ? ' (CPU kernels: on a GPU target prefer fp16-weights with compute fp16)' : '';
    return `Weights of ${count} MatMul/Gemm node(s) about 4x smaller (model ≈${mb(analysis.weightBytes / 4)} instead of ${mb(analysis.weightBytes)} when they hold most weights), 2–8x lower CPU latency at small batch; outputs typically within cosine 0.999 of the original${where}.`;
  },
  applicability(analysis: ModelAnalysis, target: TargetSpec) {
    if (countMatMulGemm(analysis) === 0)
      return { ok: false, reason: 'the model has no MatMul or Gemm node to quantize' };
    if (target.kind === 'gpu') {
      return {
        ok: false,
        reason:
          "onnxruntime's DynamicQuantizeMatMul runs on the CPU only; on a GPU target it would move every MatMul to the CPU",
      };
    }
    return { ok: true };
  },
  async apply(model: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    let options: Int8DynamicOptions;
    try {
      options = readOptions(ctx.options);
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    const total = Math.max(1, countMatMulGemm(ctx.analysis));
    let done = 0;
    ctx.onProgress?.(0, 'quantizing weights');
    const { model: quantized, report } = quantizeDynamicInt8(model, options, (w) =>
      ctx.onProgress?.(Math.min(0.8, (++done / total) * 0.8), `quantized ${w}`),
    );
    const skippedLines = report.skipped.map((s) => `left in float32: ${s.node} (${s.opType}): ${s.reason}`);
    if (!quantized) {
      const reason =
        report.skipped.length === 0
          ? 'the model has no MatMul or Gemm node to quantize'
          : `none of the ${report.skipped.length} MatMul/Gemm node(s) has a quantizable weight: ${report.skipped.map((s) => `${s.node}: ${s.reason}`).join('; ')}`;
      return { applied: false, reason };
    }
    ctx.onProgress?.(0.85, 'verifying in onnxruntime');
    const check = await checkCandidate(model, quantized, ctx.analysis.inputs, ctx.sampleInputs);
    if (!check.ok) return { applied: false, reason: check.reason };
    ctx.onProgress?.(1, 'done');
    const notes = [
      `quantized ${report.quantized.length} MatMul/Gemm node(s) to DynamicQuantizeMatMul (int8 weights, ${options.perChannel === false ? 'one scale per weight' : 'one scale per output channel'}${options.reduceRange ? ', 7-bit range' : ''}); activations are quantized at run time`,
      `weights: ${mb(report.floatWeightBytes)} float32 → ${mb(report.quantizedWeightBytes)} int8 + scales; model ${mb(model.length)} → ${mb(quantized.length)} (${(model.length / quantized.length).toFixed(2)}x smaller)`,
      ...report.sharedWeights.map((s) => `weight ${s.weight} is shared by ${s.nodes.join(', ')}: quantized once`),
      ...report.quantized
        .filter((q) => q.bias)
        .map((q) => `${q.node}: bias ${q.bias} kept in float32 inside the kernel`),
      ...skippedLines,
      `checked in onnxruntime on sample inputs: cosine similarity ${check.agreement.cosine.toFixed(6)}, max abs error ${check.agreement.maxAbsError.toExponential(3)}`,
    ];
    return { applied: true, model: quantized, notes };
  },
};
