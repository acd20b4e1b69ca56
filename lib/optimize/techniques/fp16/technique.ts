/**
 * fp16-weights as an optimization technique: weights only (weightsOnly.ts) by default, full float16 compute
 * (fullCompute.ts) with `{ compute: 'fp16' }`; either is checked against the original in onnxruntime.
 */
import type { ModelAnalysis } from '../../../onnx/analyze';
import { FLOAT16_MAX } from '../../../onnx/float16';
import { forEachGraph } from '../../../onnx/graph';
import { decodeModel, type OnnxModel } from '../../../onnx/model';
import { TensorDataType, tensorByteSize } from '../../../onnx/tensor';
import type { OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../../technique';
import { mb } from '../adapter';
import { checkCandidate } from '../verifyCandidate';
import { convertToFloat16Compute, cpuFloat16Fallbacks } from './fullCompute';
import { type Fp16Options, readOptions } from './options';
import { storeWeightsAsFloat16 } from './weightsOnly';

export const FP16_WEIGHTS_ID = 'fp16-weights';

function floatWeightBytes(model: OnnxModel): number {
  let bytes = 0;
  forEachGraph(model.graph ?? {}, (g) => {
    for (const t of g.initializer ?? []) if (t.data_type === TensorDataType.FLOAT) bytes += tensorByteSize(t);
    for (const n of g.node ?? []) {
      const t = n.op_type === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
      if (t?.data_type === TensorDataType.FLOAT) bytes += tensorByteSize(t);
    }
  });
  return bytes;
}

export const fp16WeightsTechnique: OptimizationTechnique = {
  id: FP16_WEIGHTS_ID,
  title: 'FP16 weights',
  description:
    "Stores float32 weights as float16 (half the bytes) with Casts back to float32 where the CPU kernels need it; inputs and outputs stay float32. Option { compute: 'fp16', blockList } converts the whole graph to float16 for GPU targets.",
  expectedEffect(analysis: ModelAnalysis, target: TargetSpec): string {
    if (analysis.weightBytes === 0) return 'Nothing to do: the model stores no weights.';
    const gpu =
      target.kind === 'gpu'
        ? "; with { compute: 'fp16' } a GPU also computes in float16 (faster on tensor cores)"
        : '; CPU latency unchanged';
    return `Weights about 2x smaller (≈${mb(analysis.weightBytes / 2)} instead of ${mb(analysis.weightBytes)}), outputs within float16 rounding of the original${gpu}.`;
  },
  applicability(analysis: ModelAnalysis) {
    if (analysis.weightBytes === 0) return { ok: false, reason: 'the model stores no weights' };
    if (analysis.externalDataFiles.length)
      return { ok: false, reason: 'the model keeps weights in external data files; load them into the model first' };
    return { ok: true };
  },
  async apply(model: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    let options: Fp16Options;
    try {
      options = readOptions(ctx.options);
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    ctx.onProgress?.(0, 'converting weights to float16');
    if (options.compute === 'fp16') return applyCompute(model, ctx, options);
    const { model: converted, report } = storeWeightsAsFloat16(model, options);
    if (!converted) {
      const why = report.skipped.length ? `: ${report.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}` : '';
      const floatBytes = floatWeightBytes(decodeModel(model));
      return {
        applied: false,
        reason:
          floatBytes === 0
            ? 'the model has no float32 weights'
            : `no float32 weight of at least ${options.minElements ?? 16} elements can be stored as float16${why}`,
      };
    }
    ctx.onProgress?.(0.7, 'verifying in onnxruntime');
    const check = await checkCandidate(model, converted, ctx.analysis.inputs, ctx.sampleInputs);
    if (!check.ok) return { applied: false, reason: check.reason };
    ctx.onProgress?.(1, 'done');
    return {
      applied: true,
      model: converted,
      notes: [
        `${report.converted.length} float32 weight(s) stored as float16 (${mb(report.float32Bytes)} → ${mb(report.float16Bytes)}), each read through a Cast to float32: CPU kernels compute in float32 as before`,
        `model ${mb(model.length)} → ${mb(converted.length)} (${(model.length / converted.length).toFixed(2)}x smaller); inputs and outputs stay float32`,
        `max abs weight rounding error ${report.maxAbsWeightError.toExponential(3)}`,
        ...report.skipped.map((s) => `kept in float32: ${s.name}: ${s.reason}`),
        `checked in onnxruntime on sample inputs: max abs output error ${check.agreement.maxAbsError.toExponential(3)}, cosine similarity ${check.agreement.cosine.toFixed(6)}`,
      ],
    };
  },
};

async function applyCompute(model: Uint8Array, ctx: TechniqueContext, options: Fp16Options): Promise<TechniqueResult> {
  let result: Awaited<ReturnType<typeof convertToFloat16Compute>>;
  try {
    result = await convertToFloat16Compute(model, options);
  } catch (err) {
    return {
      applied: false,
      reason: `onnxruntime could not resolve the model's value types: ${(err as Error).message}`,
    };
  }
  const { model: converted, report } = result;
  if (!converted)
    return {
      applied: false,
      reason: 'no node computes in float32 outside the block list, so there is nothing to convert to float16',
    };
  ctx.onProgress?.(0.6, 'verifying in onnxruntime (CPU provider)');
  const check = await checkCandidate(model, converted, ctx.analysis.inputs, ctx.sampleInputs);
  if (!check.ok) return { applied: false, reason: check.reason };
  let fallbacks: string[] | undefined;
  try {
    fallbacks = await cpuFloat16Fallbacks(converted, ctx.workDir, new Set(report.keptNodes.map((k) => k.node)));
  } catch {
    fallbacks = undefined;
  }
  ctx.onProgress?.(1, 'done');
  const cpuNote =
    fallbacks === undefined
      ? "onnxruntime's CPU provider ran it; whether it used float16 kernels could not be read back: do not take its CPU speed as a GPU's"
      : fallbacks.length
        ? `onnxruntime's CPU provider has no float16 kernel for ${fallbacks.join(', ')}: it ran them in float32 behind inserted Casts, so CPU latency says nothing about a GPU — this mode is for GPU targets`
        : "onnxruntime's CPU provider ran every node in float16; the speed that matters is still a GPU's";
  return {
    applied: true,
    model: converted,
    notes: [
      `full float16 compute: ${report.fp16Nodes} node(s) in float16, ${report.keptNodes.length} kept in float32${report.keptNodes.length ? ` (${report.keptNodes.map((k) => `${k.node} ${k.opType}: ${k.why}`).join('; ')})` : ''}`,
      `${report.boundaryCasts} Cast(s) at the graph's inputs/outputs (which stay float32), ${report.innerCasts} around float32 nodes`,
      `${report.weightsConverted} weight(s) in float16, max abs rounding error ${report.maxAbsWeightError.toExponential(3)}${report.clampedValues ? `, ${report.clampedValues} value(s) clamped to ±${FLOAT16_MAX}` : ''}`,
      `model ${mb(model.length)} → ${mb(converted.length)} (${(model.length / converted.length).toFixed(2)}x smaller)`,
      cpuNote,
      `checked in onnxruntime (CPU) on sample inputs: max abs output error ${check.agreement.maxAbsError.toExponential(3)}, cosine similarity ${check.agreement.cosine.toFixed(6)}`,
    ],
  };
}
