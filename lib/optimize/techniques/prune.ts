/**
 * Magnitude pruning: in every constant float32 weight of MatMul, Gemm and Conv (initializers and Constant
 * nodes, in the main graph and in If/Loop/Scan bodies), the `sparsity` share of entries with the smallest |w|
 * become exactly 0. Each weight tensor is pruned to the target on its own ("per layer"), so no layer loses more
 * than asked; a weight shared by several nodes is pruned once. Biases are left alone.
 *
 * What it does and does not buy: the model stays dense float32, so its file and memory size do not change and
 * onnxruntime's CPU kernels do the same work (zeros are multiplied like any other value). What shrinks is the
 * compressed size (runs of zero bytes compress well: registry layers, downloads, cold storage), and a sparse-
 * aware runtime or a later quantization could use the zeros. Accuracy moves: the report gives the max abs
 * error and cosine against the original on the same inputs; magnitude pruning without fine-tuning costs
 * accuracy quickly past ~50% on small layers.
 */
import { gzipSync } from 'node:zlib';
import type { ModelAnalysis } from '../../onnx/analyze';
import { isDefaultDomain, subgraphsOf } from '../../onnx/graph';
import { type ConstantWeight, GraphScope } from '../../onnx/graphRewrite';
import { decodeModel, encodeModel, type GraphProto, type OnnxModel, type TensorProto } from '../../onnx/model';
import { isExternal, setFloat32Values, TensorDataType, tensorToFloat32 } from '../../onnx/tensor';
import type { OptimizationTechnique, TechniqueContext, TechniqueResult } from '../technique';
import { excludeNodesOption, nonNegativeOption, opTypesOption, type RawOptions } from './adapter';
import { type CalibrationData, generateCalibrationData, userCalibrationData } from './calibration';
import { type Agreement, describeAgreement, measureAgreement, type OrtFeeds, toOrtTensors } from './modelAgreement';

export const PRUNE_MAGNITUDE_ID = 'prune-magnitude';

export type PrunableOp = 'MatMul' | 'Gemm' | 'Conv';
const PRUNABLE_OPS: readonly PrunableOp[] = ['MatMul', 'Gemm', 'Conv'];

export interface PruneOptions {
  /** Share of each weight's entries set to zero, in [0, 1) (default 0.5). */
  sparsity?: number;
  opTypes?: PrunableOp[];
  /** Weights with fewer elements are left alone (default 0: prune every weight). */
  minElements?: number;
  /** Node names (or first outputs, for unnamed nodes) whose weights stay as they are. */
  excludeNodes?: string[];
}

export interface PrunedWeight {
  weight: string;
  /** Nodes reading it (label: name or first output). */
  nodes: string[];
  elements: number;
  zerosBefore: number;
  zerosAfter: number;
  /** zerosAfter / elements. */
  sparsity: number;
}

export interface PruneReport {
  target: number;
  weights: PrunedWeight[];
  skipped: Array<{ node: string; opType: string; reason: string }>;
}

/**
 * Zeroes the `sparsity` share of smallest-magnitude entries of `values` (in place). Ties at the threshold are
 * broken by position so that exactly round(sparsity × n) entries are zero, unless more were zero already.
 */
export function pruneSmallest(values: Float32Array, sparsity: number): number {
  const n = values.length;
  const target = Math.round(sparsity * n);
  if (target <= 0) return countZeros(values);
  const magnitudes = Float32Array.from(values, Math.abs).sort();
  const threshold = magnitudes[target - 1];
  let below = 0;
  for (let i = 0; i < n; i++) if (Math.abs(values[i]) < threshold) below++;
  let tiesToZero = target - below;
  for (let i = 0; i < n; i++) {
    const m = Math.abs(values[i]);
    if (m < threshold) values[i] = 0;
    else if (m === threshold && tiesToZero > 0) {
      values[i] = 0;
      tiesToZero--;
    }
  }
  return countZeros(values);
}

function countZeros(values: Float32Array): number {
  let z = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) z++;
  return z;
}

/** Prunes the model in place; returns what happened to each weight. */
export function pruneModel(model: OnnxModel, options: PruneOptions = {}): PruneReport {
  const sparsity = options.sparsity ?? 0.5;
  if (!(sparsity >= 0 && sparsity < 1)) throw new Error(`sparsity must be in [0, 1), got ${sparsity}`);
  const opTypes = options.opTypes ?? PRUNABLE_OPS;
  const minElements = options.minElements ?? 0;
  const exclude = new Set(options.excludeNodes ?? []);
  const report: PruneReport = { target: sparsity, weights: [], skipped: [] };
  const done = new Map<TensorProto, PrunedWeight>();
  const irVersion = Number(model.ir_version ?? 0);

  const visit = (graph: GraphProto, parent: GraphScope | undefined): void => {
    const scope = new GraphScope(graph, parent, irVersion);
    for (const node of graph.node ?? []) {
      for (const sub of subgraphsOf(node)) visit(sub.graph, scope);
      const op = node.op_type as PrunableOp;
      if (!isDefaultDomain(node.domain) || !opTypes.includes(op)) continue;
      const label = node.name || node.output?.[0] || op;
      const skip = (reason: string) => report.skipped.push({ node: label, opType: op, reason });
      if (exclude.has(label)) {
        skip('excluded by the excludeNodes option');
        continue;
      }
      const name = node.input?.[1];
      if (!name) {
        skip('it has no weight input');
        continue;
      }
      const found = scope.lookupConstant(name);
      if (!found.constant) {
        skip(`its weight is not a constant: ${found.reason}`);
        continue;
      }
      const w: ConstantWeight = found.weight;
      const t = w.tensor;
      const already = done.get(t);
      if (already) {
        already.nodes.push(label);
        continue;
      }
      if (t.data_type !== TensorDataType.FLOAT) {
        skip(`weight '${name}' is ${TensorDataType[t.data_type ?? 0] ?? t.data_type}, not float32`);
        continue;
      }
      if (isExternal(t)) {
        skip(`weight '${name}' keeps its data in an external file`);
        continue;
      }
      const values = tensorToFloat32(t);
      if (values.length < minElements) {
        skip(`weight '${name}' has ${values.length} elements, below minElements (${minElements})`);
        continue;
      }
      const zerosBefore = countZeros(values);
      const zerosAfter = pruneSmallest(values, sparsity);
      setFloat32Values(t, values);
      const entry: PrunedWeight = {
        weight: name,
        nodes: [label],
        elements: values.length,
        zerosBefore,
        zerosAfter,
        sparsity: zerosAfter / values.length,
      };
      done.set(t, entry);
      report.weights.push(entry);
    }
  };
  if (model.graph) visit(model.graph, undefined);
  return report;
}

export function gzipSize(bytes: Uint8Array): number {
  return gzipSync(bytes, { level: 9 }).length;
}

function readOptions(raw: RawOptions | undefined): PruneOptions {
  const o = raw ?? {};
  const out: PruneOptions = {};
  if (o.sparsity !== undefined) {
    if (typeof o.sparsity !== 'number' || !(o.sparsity >= 0 && o.sparsity < 1))
      throw new Error('option sparsity must be a number in [0, 1), e.g. 0.5');
    out.sparsity = o.sparsity;
  }
  const minElements = nonNegativeOption(o, 'minElements');
  if (minElements !== undefined) out.minElements = minElements;
  const opTypes = opTypesOption(o, PRUNABLE_OPS, 'option opTypes must list Conv, MatMul and/or Gemm');
  if (opTypes) out.opTypes = opTypes;
  const excludeNodes = excludeNodesOption(o);
  if (excludeNodes) out.excludeNodes = excludeNodes;
  return out;
}

function percent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

export const pruneMagnitude: OptimizationTechnique = {
  id: PRUNE_MAGNITUDE_ID,
  title: 'Magnitude pruning',
  description:
    'Sets the smallest-magnitude share of every MatMul/Gemm/Conv weight to zero (per layer, option sparsity, default 0.5). ' +
    'The model stays dense: same file size and speed in onnxruntime; the compressed (gzip) size shrinks. No fine-tuning, so accuracy drops with sparsity.',
  expectedEffect(analysis: ModelAnalysis): string {
    return `Same raw size (${analysis.weightBytes} weight bytes stay dense float32) and latency; the gzip-compressed model shrinks roughly with the sparsity (about 40% smaller at 50%); outputs drift, reported as max abs error and cosine.`;
  },
  applicability(analysis: ModelAnalysis): { ok: true } | { ok: false; reason: string } {
    const count =
      (analysis.opHistogram.Conv ?? 0) + (analysis.opHistogram.MatMul ?? 0) + (analysis.opHistogram.Gemm ?? 0);
    return count > 0
      ? { ok: true }
      : { ok: false, reason: 'the model has no Conv, MatMul or Gemm node: no weights to prune' };
  },
  async apply(bytes: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    const applicable = pruneMagnitude.applicability(ctx.analysis, ctx.target);
    if (!applicable.ok) return { applied: false, reason: applicable.reason };
    let options: PruneOptions;
    let data: CalibrationData;
    try {
      options = readOptions(ctx.options);
      data = ctx.calibration?.length
        ? userCalibrationData(ctx.analysis.inputs, ctx.calibration, ctx.sampleInputs)
        : generateCalibrationData(ctx.analysis.inputs, { batches: 4, template: ctx.sampleInputs });
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    ctx.onProgress?.(0.1, 'pruning weights');
    const model = decodeModel(bytes);
    const report = pruneModel(model, options);
    if (report.weights.length === 0) {
      const why = report.skipped.map((s) => `${s.node} (${s.opType}): ${s.reason}`).join('; ');
      return { applied: false, reason: `no constant float32 MatMul/Gemm/Conv weight to prune${why ? `: ${why}` : ''}` };
    }
    const pruned = encodeModel(model);
    ctx.onProgress?.(0.5, 'measuring compressed size and agreement');
    const gzBefore = gzipSize(bytes);
    const gzAfter = gzipSize(pruned);
    const batches: OrtFeeds[] = data.batches.slice(0, 4);
    if (ctx.sampleInputs) batches.push(toOrtTensors(ctx.sampleInputs));
    let agreement: Agreement;
    try {
      agreement = await measureAgreement(bytes, pruned, batches);
    } catch (err) {
      return {
        applied: false,
        reason: `onnxruntime could not load or run the pruned model: ${(err as Error).message}`,
      };
    }
    if (Number.isNaN(agreement.maxAbsError))
      return { applied: false, reason: 'the pruned model produced NaN where the original did not' };
    ctx.onProgress?.(1, 'done');
    const totalElements = report.weights.reduce((a, w) => a + w.elements, 0);
    const totalZeros = report.weights.reduce((a, w) => a + w.zerosAfter, 0);
    const notes = [
      `${report.weights.length} weight tensor(s) pruned to ${percent(report.target)} each; overall ${percent(totalZeros / totalElements)} of ${totalElements} weights are zero`,
      ...report.weights.map(
        (w) =>
          `${w.weight} (${w.nodes.join(', ')}): ${percent(w.sparsity)} zero (${w.zerosAfter}/${w.elements}; ${w.zerosBefore} before)`,
      ),
      `gzip -9 size ${gzBefore} → ${gzAfter} bytes (${percent(1 - gzAfter / gzBefore)} smaller)`,
      `raw size ${bytes.length} → ${pruned.length} bytes: dense float32 storage does not shrink, and onnxruntime's CPU kernels do not skip zeros, so latency stays the same`,
      `agreement on ${batches.length} batches (${data.source === 'user' ? 'calibration samples' : 'generated inputs'}${ctx.sampleInputs ? ' + the engine sample' : ''}): ${describeAgreement(agreement)}`,
      ...report.skipped.map((s) => `left as is: ${s.node} (${s.opType}): ${s.reason}`),
    ];
    return { applied: true, model: pruned, notes };
  },
};
