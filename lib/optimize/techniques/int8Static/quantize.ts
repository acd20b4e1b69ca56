/**
 * Static INT8 quantization of a model, start to end: plan, raise the opset where needed, calibrate, rewrite.
 *
 * Opset: QuantizeLinear needs opset 10 and per-axis scales 13; an older model is upgraded (lib/onnx/opsetUpgrade)
 * when all its ops allow it. If per-axis is impossible but opset 10 is there, weights fall back to one scale per
 * tensor. Only the main graph is quantized; If/Loop/Scan bodies stay float32.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelAnalysis } from '../../../onnx/analyze';
import { forEachGraph, isDefaultDomain, subgraphsOf } from '../../../onnx/graph';
import { defaultOpsetVersion } from '../../../onnx/graphRewrite';
import { decodeModel, encodeModel, type OnnxModel } from '../../../onnx/model';
import { upgradeDefaultOpset } from '../../../onnx/opsetUpgrade';
import type { Feeds } from '../../technique';
import { type CalibrationData, type CalibrationMethod, calibrateRanges, generateCalibrationData } from '../calibration';
import { type Int8StaticOptions, QUANTIZABLE_OPS, type QuantizableOp, resolveOptions } from './options';
import { planStaticQuantization, type SkippedNode } from './plan';
import { QdqRewriter, type QuantizedActivation } from './qdqRewrite';

export interface StaticQuantizedNode {
  /** The node's name, or its first output when it has none (what `excludeNodes` matches). */
  node: string;
  /** Its name in the quantized model (unnamed nodes get one, so onnxruntime's fusion can be checked). */
  nameInModel: string;
  /** Op in the original model. */
  opType: QuantizableOp;
  /** What onnxruntime sees: the op between the Q/DQ pairs ('Gemm' for MatMul+Add rewritten). */
  quantizedAs: QuantizableOp;
  weight: string;
  perChannel: boolean;
  input: string;
  /** Tensor whose values leave the node quantized (the folded Relu's output when one was folded). */
  quantizedOutput?: string;
  foldedRelu?: string;
}

export interface Int8StaticReport {
  quantized: StaticQuantizedNode[];
  /** Add nodes run in 8 bits (QLinearAdd), by name or first output. */
  quantizedAdds: string[];
  /** Their names in the quantized model. */
  quantizedAddNames: string[];
  skipped: SkippedNode[];
  opset: { from: number; to: number; changes: string[] };
  calibration: { method: CalibrationMethod; source: 'user' | 'generated'; description: string; tensors: number };
  /** Scale and zero point of every quantized activation, with the range they came from. */
  activations: Record<string, QuantizedActivation>;
  /** Bias values that did not fit int32 at scale (input scale × weight scale) and were clamped. */
  clampedBiases: string[];
  notes: string[];
}

/** Why a model cannot be statically quantized, in words for the user. */
export class NotQuantizable extends Error {}

export interface StaticQuantizationInput {
  options?: Int8StaticOptions;
  /** Calibration batches; generated from the input specs when absent. */
  calibration?: CalibrationData;
  inputs: ModelAnalysis['inputs'];
  /** Inputs that run (the engine's sample inputs), the template for generated calibration data. */
  sampleInputs?: Feeds;
  workDir: string;
  onProgress?: (fraction: number, detail?: string) => void;
}

/**
 * Names (among `names`) of Conv/MatMul/Gemm/Add nodes onnxruntime leaves unfused when it optimizes the model at the
 * portable 'extended' level: they would dequantize their int8 weights on every run, slower than float32.
 */
export async function unfusedQdqNodes(model: Uint8Array, names: readonly string[], workDir: string): Promise<string[]> {
  const path = join(workDir, 'int8-static-fusion-check.onnx');
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'extended',
    optimizedModelFilePath: path,
    logSeverityLevel: 3,
  });
  await session.release();
  const optimized = decodeModel(await readFile(path));
  const wanted = new Set(names);
  return (optimized.graph?.node ?? [])
    .filter(
      (n) =>
        isDefaultDomain(n.domain) &&
        ['Conv', 'MatMul', 'Gemm', 'Add'].includes(n.op_type ?? '') &&
        wanted.has(n.name ?? ''),
    )
    .map((n) => n.name ?? '');
}

/**
 * Quantizes the model (see the module comment). Throws NotQuantizable with a user-facing reason when the model
 * has nothing to quantize or cannot take Q/DQ nodes. Does not run the result; the technique does.
 */
export async function quantizeStaticQdq(
  bytes: Uint8Array,
  input: StaticQuantizationInput,
): Promise<{ model: Uint8Array; report: Int8StaticReport; calibration: CalibrationData }> {
  const opts = resolveOptions(input.options ?? {});
  const notes: string[] = [];
  const original = decodeModel(bytes);
  const first = planStaticQuantization(original, opts);
  if (first.planned.length === 0) {
    const why = first.skipped.length
      ? `: ${first.skipped.map((s) => `${s.node} (${s.opType}): ${s.reason}`).join('; ')}`
      : '';
    throw new NotQuantizable(
      `no ${opts.opTypes.join(', ')} node with a constant float32 weight in the main graph${why}`,
    );
  }

  // Opset: 10 for QuantizeLinear, 13 for per-axis scales.
  const from = defaultOpsetVersion(original);
  let perChannel = opts.perChannel;
  let working = decodeModel(bytes);
  let upgradeChanges: string[] = [];
  let to = from;
  const needed = perChannel ? 13 : 10;
  if (from < needed) {
    const upgraded = upgradeDefaultOpset(working, needed);
    if (upgraded.ok) {
      upgradeChanges = upgraded.changes;
      to = needed;
      notes.push(
        `opset raised from ${from} to ${needed} (${needed === 13 ? 'per-axis' : ''}QuantizeLinear needs it)${upgraded.changes.length ? `: ${upgraded.changes.join('; ')}` : ''}`,
      );
    } else if (perChannel && from >= 10) {
      working = decodeModel(bytes);
      perChannel = false;
      notes.push(
        `per-channel weight scales need opset 13 and ${upgraded.reason.replace(/^cannot /, 'Ferry cannot ')}; weights use one scale per tensor (opset ${from} has QuantizeLinear)`,
      );
    } else {
      throw new NotQuantizable(`QuantizeLinear needs opset ${needed} and the model has ${from}; ${upgraded.reason}`);
    }
  }
  const floatBytes = to === from ? bytes : encodeModel(working);
  const { planned, adds, skipped } = planStaticQuantization(working, opts);
  const subgraphCandidates = countSubgraphCandidates(working);
  if (subgraphCandidates > 0)
    notes.push(`${subgraphCandidates} Conv/MatMul/Gemm node(s) inside If/Loop/Scan bodies stay float32`);

  const rewriter = new QdqRewriter(working, planned, adds, opts, perChannel);
  const names = rewriter.tensorsToCalibrate();
  const data =
    input.calibration ?? generateCalibrationData(input.inputs, { template: input.sampleInputs, ...opts.generated });
  const calibrated = await calibrateRanges(floatBytes, names, data, {
    method: opts.calibrationMethod,
    percentile: opts.percentile,
    workDir: input.workDir,
    onProgress: (f, d) => input.onProgress?.(0.05 + 0.8 * f, d),
  });
  input.onProgress?.(0.86, 'inserting QuantizeLinear/DequantizeLinear pairs');
  rewriter.rewrite(calibrated.ranges);
  if (rewriter.clampedBiases.length)
    notes.push(`bias values of ${rewriter.clampedBiases.join(', ')} exceeded int32 at their scale and were clamped`);
  const report: Int8StaticReport = {
    quantized: planned.map((p) => ({
      node: p.label,
      nameInModel: p.nameInModel ?? p.label,
      opType: p.opType,
      quantizedAs: p.quantizedAs,
      weight: p.weight.name,
      perChannel,
      input: p.input,
      ...(p.quantizeOutput ? { quantizedOutput: rewriter.outputTensor(p) } : {}),
      ...(p.relu ? { foldedRelu: p.relu.name || p.relu.output?.[0] || 'Relu' } : {}),
    })),
    quantizedAdds: adds.map((a) => a.label),
    quantizedAddNames: adds.map((a) => a.nameInModel ?? a.label),
    skipped,
    opset: { from, to, changes: upgradeChanges },
    calibration: {
      method: opts.calibrationMethod,
      source: data.source,
      description: data.description,
      tensors: names.length,
    },
    activations: rewriter.activations,
    clampedBiases: rewriter.clampedBiases,
    notes,
  };
  return { model: encodeModel(working), report, calibration: data };
}

function countSubgraphCandidates(model: OnnxModel): number {
  let count = 0;
  for (const node of model.graph?.node ?? []) {
    for (const sub of subgraphsOf(node)) {
      forEachGraph(sub.graph, (g) => {
        for (const n of g.node ?? [])
          if (isDefaultDomain(n.domain) && QUANTIZABLE_OPS.includes(n.op_type as QuantizableOp)) count++;
      });
    }
  }
  return count;
}
