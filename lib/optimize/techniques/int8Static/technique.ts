/**
 * int8-static as an optimization technique: reads its options and the calibration data, quantizes, keeps float32
 * what onnxruntime would not fuse into integer kernels, and checks the result against the original in onnxruntime
 * (on calibration batches and on the engine's sample inputs) before it is returned.
 */
import type { ModelAnalysis } from '../../../onnx/analyze';
import type { OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../../technique';
import { type CalibrationData, userCalibrationData } from '../calibration';
import { type Agreement, describeAgreement, measureAgreement, toOrtTensors } from '../modelAgreement';
import { type Int8StaticOptions, readOptions } from './options';
import { NotQuantizable, quantizeStaticQdq, unfusedQdqNodes } from './quantize';

export const INT8_STATIC_ID = 'int8-static';

export const int8Static: OptimizationTechnique = {
  id: INT8_STATIC_ID,
  title: 'INT8 static quantization (QDQ, calibrated)',
  description:
    'Conv, MatMul and Gemm weights become int8 with one scale per output channel, and their inputs and outputs are quantized with ' +
    'ranges measured on calibration data, as QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses into integer kernels. ' +
    'Calibration: min/max, percentile or entropy; user-supplied samples, or generated from the input specs (weaker ranges).',
  expectedEffect(analysis: ModelAnalysis, target: TargetSpec): string {
    const ops = ['Conv', 'MatMul', 'Gemm'].filter((op) => analysis.opHistogram[op]).join('/');
    const cpu =
      target.kind === 'cpu'
        ? ''
        : ' (the gain is for CPU execution; GPU execution providers may not fuse QDQ int8 kernels)';
    return `About 3.5-4x smaller ${ops} weights and typically 1.3-2.5x lower CPU latency at batch 1; outputs drift by the activation quantization step, so agreement depends on how representative the calibration data is${cpu}.`;
  },
  applicability(analysis: ModelAnalysis): { ok: true } | { ok: false; reason: string } {
    const count =
      (analysis.opHistogram.Conv ?? 0) + (analysis.opHistogram.MatMul ?? 0) + (analysis.opHistogram.Gemm ?? 0);
    return count > 0
      ? { ok: true }
      : {
          ok: false,
          reason: 'the model has no Conv, MatMul or Gemm node: nothing for static INT8 quantization to quantize',
        };
  },
  async apply(model: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    const applicable = int8Static.applicability(ctx.analysis, ctx.target);
    if (!applicable.ok) return { applied: false, reason: applicable.reason };
    let options: Int8StaticOptions;
    let calibration: CalibrationData | undefined;
    try {
      options = readOptions(ctx.options);
      if (ctx.calibration?.length)
        calibration = userCalibrationData(ctx.analysis.inputs, ctx.calibration, ctx.sampleInputs);
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    let result: Awaited<ReturnType<typeof quantizeStaticQdq>>;
    const unfusedNotes: string[] = [];
    let fusionExcluded: string[] = [];
    try {
      result = await quantizeStaticQdq(model, {
        options,
        calibration,
        inputs: ctx.analysis.inputs,
        sampleInputs: ctx.sampleInputs,
        workDir: ctx.workDir,
        onProgress: ctx.onProgress,
      });
      // A quantized node onnxruntime does not fuse would run slower than float32: keep such nodes float32 instead.
      const report = result.report;
      const unfused = await unfusedQdqNodes(
        result.model,
        [...report.quantized.map((q) => q.nameInModel), ...report.quantizedAddNames],
        ctx.workDir,
      );
      if (unfused.length > 0) {
        const labels = [
          ...report.quantized.filter((q) => unfused.includes(q.nameInModel)).map((q) => q.node),
          ...report.quantizedAdds.filter((_, i) => unfused.includes(report.quantizedAddNames[i])),
        ];
        unfusedNotes.push(
          `onnxruntime did not fuse ${labels.join(', ')} into integer kernels; kept float32 (a dequantize on every run would be slower)`,
        );
        if (report.quantized.every((q) => labels.includes(q.node))) {
          return {
            applied: false,
            reason: `onnxruntime fuses none of the quantized nodes (${labels.join(', ')}) into integer kernels: the QDQ model would be slower than the original`,
          };
        }
        fusionExcluded = labels;
        options = { ...options, excludeNodes: [...(options.excludeNodes ?? []), ...labels] };
        result = await quantizeStaticQdq(model, {
          options,
          calibration: result.calibration,
          inputs: ctx.analysis.inputs,
          workDir: ctx.workDir,
          onProgress: ctx.onProgress,
        });
      }
    } catch (err) {
      if (err instanceof NotQuantizable) return { applied: false, reason: err.message };
      return { applied: false, reason: `static quantization failed: ${(err as Error).message}` };
    }
    ctx.onProgress?.(0.9, 'verifying the quantized model in onnxruntime');
    const { report } = result;
    // Agreement on calibration batches (in-sample) and on the engine's sample inputs (out-of-sample) when given.
    const check = result.calibration.batches.slice(0, 8);
    let agreement: Agreement;
    let sampleAgreement: Agreement | undefined;
    try {
      agreement = await measureAgreement(model, result.model, check);
      if (ctx.sampleInputs)
        sampleAgreement = await measureAgreement(model, result.model, [toOrtTensors(ctx.sampleInputs)]);
    } catch (err) {
      return {
        applied: false,
        reason: `onnxruntime could not load or run the quantized model: ${(err as Error).message}`,
      };
    }
    if (Number.isNaN(agreement.maxAbsError))
      return { applied: false, reason: 'the quantized model produced NaN where the original did not' };
    ctx.onProgress?.(1, 'done');
    const weightsBefore = report.quantized.length;
    const notes = [
      `${weightsBefore} node(s) quantized (${summarize(report.quantized.map((q) => (q.opType === q.quantizedAs ? q.opType : `${q.opType}+Add→${q.quantizedAs}`)))}), ` +
        `weights int8 ${report.quantized[0]?.perChannel ? 'per channel' : 'per tensor'}, activations ${options.activationType ?? 'uint8'}` +
        `${report.quantized.some((q) => q.foldedRelu) ? `, ${report.quantized.filter((q) => q.foldedRelu).length} Relu folded into QuantizeLinear` : ''}` +
        `${report.quantizedAdds.length ? `; ${report.quantizedAdds.length} Add node(s) downstream run in 8 bits (QLinearAdd)` : ''}`,
      `calibration: ${report.calibration.method}${report.calibration.method === 'percentile' ? ` ${options.percentile ?? 99.99}%` : ''} over ${report.calibration.description}, ${report.calibration.tensors} tensors`,
      ...report.notes,
      ...unfusedNotes,
      ...report.skipped
        .filter((s) => !fusionExcluded.includes(s.node))
        .map((s) => `kept float32: ${s.node} (${s.opType}): ${s.reason}`),
      `size ${model.length} → ${result.model.length} bytes (${(model.length / result.model.length).toFixed(2)}x smaller)`,
      `agreement on ${check.length} calibration batches: ${describeAgreement(agreement)}`,
      ...(sampleAgreement ? [`agreement on the engine's sample inputs: ${describeAgreement(sampleAgreement)}`] : []),
    ];
    return { applied: true, model: result.model, notes };
  },
};

function summarize(items: string[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${v} ${k}`).join(', ');
}
