/**
 * fp16-weights: float32 weights stored as float16.
 *
 * Default ('weights only', for CPU targets): every float32 initializer and Constant tensor of at least
 * `minElements` elements is stored as float16 and a Cast back to float32 is inserted before its consumers,
 * so the model file halves while every kernel still computes in float32 (onnxruntime folds those Casts when
 * it loads the model: latency is unchanged, the disk and image size are not). Inputs and outputs stay float32.
 *
 * `{ compute: 'fp16' }` (for GPU targets): the whole graph computes in float16 except the ops in the block
 * list (a default list plus `blockList`), ops of other domains and ops with subgraphs, which stay float32 with
 * Casts around them; the graph's inputs are cast to float16 where they enter and its outputs back to float32,
 * so callers still see float32. onnxruntime's CPU execution provider runs such a model by inserting float32
 * Casts around every op it has no float16 kernel for, so on CPU it is checked for loading and agreement, and
 * its CPU speed says nothing about a GPU.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelAnalysis } from '../../onnx/analyze';
import { attr, makeNode } from '../../onnx/builders';
import { FLOAT16_MAX, float16BitsToFloat32, float16Tensor, float32ToFloat16Bits } from '../../onnx/float16';
import { findAttribute, forEachGraph, isDefaultDomain, subgraphsOf } from '../../onnx/graph';
import { implicitInputs, NameAllocator, renameOuterReads } from '../../onnx/graphRewrite';
import {
  AttributeType,
  decodeModel,
  encodeModel,
  type GraphProto,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
} from '../../onnx/model';
import { elementCount, isExternal, TensorDataType, tensorByteSize, tensorToFloat32 } from '../../onnx/tensor';
import type { OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../technique';
import { valueTypesFromOnnxruntime } from './valueTypes';
import { checkCandidate } from './verifyCandidate';

export const FP16_WEIGHTS_ID = 'fp16-weights';

/**
 * Ops kept in float32 in full-fp16 compute unless the caller says otherwise: ops whose float inputs must be
 * float32 by the spec (Resize/Upsample scales, quantization scales before opset 19), ops with no float16
 * type in the spec, and ops whose float16 results are known to be unreliable (range and prefix sums).
 */
export const DEFAULT_FP16_BLOCK_LIST: readonly string[] = [
  'Resize',
  'Upsample',
  'Range',
  'CumSum',
  'TopK',
  'NonMaxSuppression',
  'RoiAlign',
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'RandomUniformLike',
  'RandomNormalLike',
  'Multinomial',
  'Bernoulli',
  'STFT',
  'DFT',
  'Det',
];

export interface Fp16Options {
  /** 'fp32' (default): weights stored as float16, computed in float32. 'fp16': full float16 compute (GPU targets). */
  compute?: 'fp32' | 'fp16';
  /** Full-fp16 compute: op types kept in float32, in addition to DEFAULT_FP16_BLOCK_LIST. */
  blockList?: string[];
  /** Weights-only mode: tensors with fewer elements stay float32 (default 16: scalars such as epsilons keep their precision). */
  minElements?: number;
}

export interface Fp16WeightsReport {
  converted: Array<{ name: string; elements: number; source: 'initializer' | 'constant-node' }>;
  skipped: Array<{ name: string; reason: string }>;
  /** Largest |w − float16(w)| over the converted weights. */
  maxAbsWeightError: number;
  float32Bytes: number;
  float16Bytes: number;
}

export interface Fp16ComputeReport {
  /** Main-graph nodes that compute in float16 now (Constant nodes not counted). */
  fp16Nodes: number;
  keptNodes: Array<{ node: string; opType: string; why: string }>;
  /** Casts where graph inputs enter and outputs leave. */
  boundaryCasts: number;
  /** Casts around the kept nodes (and weights they read). */
  innerCasts: number;
  weightsConverted: number;
  /** Weight values beyond ±65504, clamped to the float16 range. */
  clampedValues: number;
  maxAbsWeightError: number;
}

function weightError(values: Float32Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const e = Math.abs(values[i] - float16BitsToFloat32(float32ToFloat16Bits(values[i])));
    if (e > max) max = e;
  }
  return max;
}

function maxAbs(values: Float32Array): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (!(a <= m)) m = a; // NaN counts as out of range
  }
  return m;
}

function castNode(names: NameAllocator, from: string, to: string, elemType: number): NodeProto {
  return makeNode('Cast', [from], [to], { name: names.fresh(`${to}_cast`), attributes: [attr.int('to', elemType)] });
}

/** The float32 tensor a Constant node holds (value, value_float, value_floats), if it holds one. */
function constantFloatValue(
  node: NodeProto,
): { values: Float32Array; dims: number[]; tensor?: TensorProto } | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t && a.t.data_type === TensorDataType.FLOAT && !isExternal(a.t)) {
      return { values: tensorToFloat32(a.t), dims: (a.t.dims ?? []).map(Number), tensor: a.t };
    }
    if (a.name === 'value_float' && a.f !== undefined) return { values: Float32Array.of(a.f), dims: [] };
    if (a.name === 'value_floats')
      return { values: Float32Array.from(a.floats ?? []), dims: [(a.floats ?? []).length] };
  }
  return undefined;
}

function setConstantTensor(node: NodeProto, tensor: TensorProto): void {
  node.attribute = [{ name: 'value', type: AttributeType.TENSOR, t: tensor }];
}

function resolveWeightOptions(o: Fp16Options): { minElements: number } {
  return { minElements: o.minElements ?? 16 };
}

/** Weights-only conversion (see the module comment). Returns no model when no weight qualified. */
export function storeWeightsAsFloat16(
  bytes: Uint8Array,
  options: Fp16Options = {},
): { model?: Uint8Array; report: Fp16WeightsReport } {
  const { minElements } = resolveWeightOptions(options);
  const model = decodeModel(bytes);
  const names = new NameAllocator(model);
  const ir = Number(model.ir_version ?? 0);
  const report: Fp16WeightsReport = {
    converted: [],
    skipped: [],
    maxAbsWeightError: 0,
    float32Bytes: 0,
    float16Bytes: 0,
  };
  const needsConstant = readersNeedingFloat32Constants(model);
  const qualifies = (name: string, values: Float32Array | undefined, count: number, external: boolean): boolean => {
    if (count < minElements) return false; // small scalars and vectors: silently kept (not worth a Cast)
    if (external) return (report.skipped.push({ name, reason: 'data in an external file' }), false);
    const reader = needsConstant.get(name);
    if (reader)
      return (
        report.skipped.push({
          name,
          reason: `read by ${reader}, which needs it as a float32 constant (quantization scales, contrib kernels)`,
        }),
        false
      );
    const m = maxAbs(values!);
    if (!(m <= FLOAT16_MAX))
      return (
        report.skipped.push({ name, reason: `values up to ${m} do not fit float16 (max ${FLOAT16_MAX})` }), false
      );
    return true;
  };
  forEachGraph(model.graph ?? {}, (graph) => {
    const isMain = graph === model.graph;
    const inputs = new Map((graph.input ?? []).map((v) => [v.name, v]));
    const front: NodeProto[] = [];
    graph.initializer = (graph.initializer ?? []).map((t) => {
      const name = t.name ?? '';
      if (t.data_type !== TensorDataType.FLOAT) return t;
      const count = elementCount(t.dims);
      if (inputs.has(name) && !(isMain && ir < 4)) {
        if (count >= minElements)
          report.skipped.push({
            name,
            reason: 'a graph input with a default value: its type is part of the interface',
          });
        return t;
      }
      const values = isExternal(t) || count < minElements ? undefined : tensorToFloat32(t);
      if (!qualifies(name, values, count, isExternal(t))) return t;
      const halfName = names.fresh(`${name}_fp16`);
      const half = {
        ...float16Tensor(halfName, (t.dims ?? []).map(Number), values!),
        ...(t.doc_string ? { doc_string: t.doc_string } : {}),
      };
      front.push(castNode(names, halfName, name, TensorDataType.FLOAT));
      const listed = inputs.get(name);
      if (listed) {
        // IR < 4 lists initializers among the inputs: the list follows the rename.
        listed.name = halfName;
        if (listed.type?.tensor_type) listed.type.tensor_type.elem_type = TensorDataType.FLOAT16;
      }
      report.converted.push({ name, elements: count, source: 'initializer' });
      report.maxAbsWeightError = Math.max(report.maxAbsWeightError, weightError(values!));
      report.float32Bytes += tensorByteSize(t);
      report.float16Bytes += tensorByteSize(half);
      return half;
    });
    const nodes: NodeProto[] = [];
    for (const node of graph.node ?? []) {
      nodes.push(node);
      if (node.op_type !== 'Constant' || !isDefaultDomain(node.domain)) continue;
      const name = node.output?.[0] ?? '';
      const value = node.attribute?.find((a) => a.name === 'value' && a.t)?.t;
      if (!value || value.data_type !== TensorDataType.FLOAT) continue;
      const count = elementCount(value.dims);
      const values = isExternal(value) || count < minElements ? undefined : tensorToFloat32(value);
      if (!qualifies(name, values, count, isExternal(value))) continue;
      const halfName = names.fresh(`${name}_fp16`);
      const half = float16Tensor(halfName, (value.dims ?? []).map(Number), values!);
      setConstantTensor(node, half);
      node.output = [halfName];
      nodes.push(castNode(names, halfName, name, TensorDataType.FLOAT));
      report.converted.push({ name, elements: count, source: 'constant-node' });
      report.maxAbsWeightError = Math.max(report.maxAbsWeightError, weightError(values!));
      report.float32Bytes += tensorByteSize(value);
      report.float16Bytes += tensorByteSize(half);
    }
    graph.node = [...front, ...nodes];
  });
  return report.converted.length > 0 ? { model: encodeModel(model), report } : { report };
}

/** Ops whose float inputs are quantization parameters or pre-packed constants: a Cast in front would slow or break them. */
const CONSTANT_READERS = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'ConvInteger',
  'MatMulInteger',
]);

/** Value name → the first op that must read it as a float32 constant (any op outside the default domain, or a quantization op). */
function readersNeedingFloat32Constants(model: OnnxModel): Map<string, string> {
  const out = new Map<string, string>();
  forEachGraph(model.graph ?? {}, (g) => {
    for (const n of g.node ?? []) {
      if (isDefaultDomain(n.domain) && !CONSTANT_READERS.has(n.op_type ?? '')) continue;
      const label = `${n.name || n.output?.[0] || ''} (${isDefaultDomain(n.domain) ? '' : `${n.domain}.`}${n.op_type})`;
      for (const i of n.input ?? []) if (i && !out.has(i)) out.set(i, label);
    }
  });
  return out;
}

type Precision = 'fp16' | 'fp32';

/** Full float16 compute (see the module comment). Needs onnxruntime to learn the type of every value. */
export async function convertToFloat16Compute(
  bytes: Uint8Array,
  options: Fp16Options = {},
): Promise<{ model?: Uint8Array; report: Fp16ComputeReport }> {
  const model = decodeModel(bytes);
  const graph: GraphProto = (model.graph ??= {});
  const types = await valueTypesFromOnnxruntime(bytes);
  const names = new NameAllocator(model);
  const ir = Number(model.ir_version ?? 0);
  const block = new Set([...DEFAULT_FP16_BLOCK_LIST, ...(options.blockList ?? [])]);
  const report: Fp16ComputeReport = {
    fp16Nodes: 0,
    keptNodes: [],
    boundaryCasts: 0,
    innerCasts: 0,
    weightsConverted: 0,
    clampedValues: 0,
    maxAbsWeightError: 0,
  };

  const graphInputs = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (t.data_type !== TensorDataType.FLOAT || isExternal(t)) continue;
    if (graphInputs.has(name) && ir >= 4) continue; // an overridable input: part of the interface
    initializers.set(name, t);
    graphInputs.delete(name);
  }
  const constants = new Map<string, NodeProto>();
  const producers = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) {
    for (const o of node.output ?? []) if (o) producers.set(o, node);
    if (node.op_type === 'Constant' && isDefaultDomain(node.domain) && constantFloatValue(node))
      constants.set(node.output?.[0] ?? '', node);
  }
  const isFloat32 = (name: string): boolean =>
    !!name && (initializers.has(name) || constants.has(name) || types.get(name)?.type === 'float32');
  const keptWhy = (node: NodeProto): string | undefined => {
    if (!isDefaultDomain(node.domain)) return `op of domain ${node.domain}`;
    if (subgraphsOf(node).length > 0) return 'has subgraphs (they stay float32)';
    if (block.has(node.op_type ?? '')) return 'in the block list';
    return undefined;
  };
  const kept = new Set<NodeProto>();
  for (const node of graph.node ?? []) {
    if (node.op_type === 'Constant' && isDefaultDomain(node.domain)) continue;
    const why = keptWhy(node);
    const touchesFloat = [...(node.input ?? []), ...(node.output ?? []), ...implicitInputs(node)].some(isFloat32);
    if (why && touchesFloat) {
      kept.add(node);
      report.keptNodes.push({ node: node.name || node.output?.[0] || '', opType: node.op_type ?? '', why });
    } else if (!why && touchesFloat) {
      report.fp16Nodes++;
    }
  }
  const isWeight = (name: string) => initializers.has(name) || constants.has(name);
  // Values some float16 node reads directly (kept up to date by the renames below).
  const readInFp16 = new Set<string>();
  for (const n of graph.node ?? [])
    if (!kept.has(n) && n.op_type !== 'Constant') for (const i of n.input ?? []) readInFp16.add(i);
  const hasFp16Consumer = (name: string) => readInFp16.has(name);
  const homeOf = (name: string): Precision => {
    if (graphInputs.has(name)) return 'fp32';
    if (isWeight(name)) return hasFp16Consumer(name) ? 'fp16' : 'fp32';
    const producer = producers.get(name);
    return producer && !kept.has(producer) ? 'fp16' : 'fp32';
  };

  // Casts after a node (by node) or at the front of the graph.
  const after = new Map<NodeProto, NodeProto[]>();
  const front: NodeProto[] = [];
  const place = (cast: NodeProto, source: string): void => {
    const producer = producers.get(source);
    if (producer) after.set(producer, [...(after.get(producer) ?? []), cast]);
    else front.push(cast);
  };

  // 1. Float outputs computed in float16 are renamed; a Cast back to float32 produces the output's own name.
  const renamed = new Map<string, string>();
  for (const out of graph.output ?? []) {
    const name = out.name ?? '';
    if (!isFloat32(name) || homeOf(name) !== 'fp16' || renamed.has(name)) continue;
    const half = names.fresh(`${name}_fp16`);
    renamed.set(name, half);
    for (const node of graph.node ?? []) {
      node.input = (node.input ?? []).map((i) => (i === name ? half : i));
      node.output = (node.output ?? []).map((o) => (o === name ? half : o));
      for (const sub of subgraphsOf(node)) renameOuterReads(sub.graph, name, half);
    }
    const init = initializers.get(name);
    if (init) {
      init.name = half;
      initializers.delete(name);
      initializers.set(half, init);
    }
    const constant = constants.get(name);
    if (constant) {
      constants.delete(name);
      constants.set(half, constant);
    }
    const producer = producers.get(name);
    if (producer) {
      producers.delete(name);
      producers.set(half, producer);
    }
    types.set(half, types.get(name) ?? { type: 'float32', shape: [] });
    if (readInFp16.has(name)) readInFp16.add(half);
    for (const vi of graph.value_info ?? []) if (vi.name === name) vi.name = half;
    place(castNode(names, half, name, TensorDataType.FLOAT), half);
    report.boundaryCasts++;
  }

  // 2. Weights read in float16 are stored in float16 (clamped to its range).
  const toHalf = (name: string, values: Float32Array, dims: number[]): TensorProto => {
    for (let i = 0; i < values.length; i++) {
      if (values[i] > FLOAT16_MAX) (values[i] = FLOAT16_MAX), report.clampedValues++;
      else if (values[i] < -FLOAT16_MAX) (values[i] = -FLOAT16_MAX), report.clampedValues++;
    }
    report.maxAbsWeightError = Math.max(report.maxAbsWeightError, weightError(values));
    report.weightsConverted++;
    return float16Tensor(name, dims, values);
  };
  const halfWeights = new Set<string>();
  graph.initializer = (graph.initializer ?? []).map((t) => {
    const name = t.name ?? '';
    if (!initializers.has(name) || homeOf(name) !== 'fp16') return t;
    halfWeights.add(name);
    return toHalf(name, tensorToFloat32(t), (t.dims ?? []).map(Number));
  });
  for (const [name, node] of constants) {
    if (homeOf(name) !== 'fp16') continue;
    const value = constantFloatValue(node)!;
    halfWeights.add(name);
    setConstantTensor(node, toHalf(name, Float32Array.from(value.values), value.dims));
  }
  const home = (name: string): Precision => (isWeight(name) ? (halfWeights.has(name) ? 'fp16' : 'fp32') : homeOf(name));

  // 3. Each node reads its float inputs at its own precision: Casts where they differ, one per value and direction.
  const casts = new Map<string, string>();
  const castOf = (name: string, to: Precision): string => {
    const key = `${name}\u0000${to}`;
    const hit = casts.get(key);
    if (hit) return hit;
    const out = names.fresh(`${name}_${to}`);
    place(castNode(names, name, out, to === 'fp16' ? TensorDataType.FLOAT16 : TensorDataType.FLOAT), name);
    if (graphInputs.has(name)) report.boundaryCasts++;
    else report.innerCasts++;
    casts.set(key, out);
    return out;
  };
  for (const node of graph.node ?? []) {
    if (node.op_type === 'Constant' && isDefaultDomain(node.domain)) continue;
    const need: Precision = kept.has(node) ? 'fp32' : 'fp16';
    node.input = (node.input ?? []).map((i) => (isFloat32(i) && home(i) !== need ? castOf(i, need) : i));
    if (kept.has(node)) {
      for (const outer of implicitInputs(node)) {
        if (!isFloat32(outer) || home(outer) === 'fp32') continue;
        const c = castOf(outer, 'fp32');
        for (const sub of subgraphsOf(node)) renameOuterReads(sub.graph, outer, c);
      }
    } else {
      retypeFloatOutputs(
        node,
        (node.output ?? []).some((o) => isFloat32(o)),
      );
    }
  }

  // 4. value_info follows the new types.
  for (const vi of graph.value_info ?? []) {
    const tt = vi.type?.tensor_type;
    if (tt && tt.elem_type === TensorDataType.FLOAT && home(vi.name ?? '') === 'fp16')
      tt.elem_type = TensorDataType.FLOAT16;
  }

  graph.node = [...front, ...(graph.node ?? []).flatMap((n) => [n, ...(after.get(n) ?? [])])];
  return report.fp16Nodes > 0 ? { model: encodeModel(model), report } : { report };
}

/** Ops whose output type comes from an attribute: a float32 result becomes float16. */
function retypeFloatOutputs(node: NodeProto, outputsFloat32: boolean): void {
  if (!outputsFloat32) return;
  switch (node.op_type) {
    case 'Cast': {
      const to = findAttribute(node, 'to');
      if (to && Number(to.i) === TensorDataType.FLOAT) to.i = TensorDataType.FLOAT16;
      break;
    }
    case 'ConstantOfShape': {
      const value = findAttribute(node, 'value');
      const values = value?.t ? tensorToFloat32(value.t) : Float32Array.of(0);
      node.attribute = [
        ...(node.attribute ?? []).filter((a) => a.name !== 'value'),
        attr.tensor('value', float16Tensor('', [1], values)),
      ];
      break;
    }
    case 'RandomNormal':
    case 'RandomUniform':
    case 'EyeLike': {
      const dtype = findAttribute(node, 'dtype');
      if (dtype) dtype.i = TensorDataType.FLOAT16;
      else if (node.op_type !== 'EyeLike')
        node.attribute = [...(node.attribute ?? []), attr.int('dtype', TensorDataType.FLOAT16)];
      break;
    }
    default:
      break;
  }
}

/**
 * The op types onnxruntime's CPU provider runs in float32 in a float16 model because it has no float16 kernel
 * for them: it inserts Casts around them when it loads the model. The model it saves after those mandatory
 * passes shows them as nodes whose outputs are float32 (`keptNodes`, float32 by design, are not counted).
 */
export async function cpuFloat16Fallbacks(
  modelBytes: Uint8Array,
  workDir: string,
  keptNodes: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const dir = await mkdtemp(path.join(workDir, 'fp16-cpu-'));
  try {
    const out = path.join(dir, 'resolved.onnx');
    const session = await ort.InferenceSession.create(modelBytes, {
      graphOptimizationLevel: 'disabled',
      optimizedModelFilePath: out,
      logSeverityLevel: 3,
    });
    await session.release();
    const resolvedBytes = new Uint8Array(await readFile(out));
    const resolved = decodeModel(resolvedBytes);
    const types = await valueTypesFromOnnxruntime(resolvedBytes);
    const fallbacks = new Set<string>();
    for (const n of resolved.graph?.node ?? []) {
      if (n.op_type === 'Cast' || n.op_type === 'Constant' || keptNodes.has(n.name ?? '')) continue;
      if ((n.output ?? []).some((o) => types.get(o)?.type === 'float32')) fallbacks.add(n.op_type ?? '');
    }
    return [...fallbacks].sort();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function readOptions(raw: Record<string, unknown> | undefined): Fp16Options {
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
  if (o.minElements !== undefined) {
    if (typeof o.minElements !== 'number' || !(o.minElements >= 0))
      throw new Error('option minElements must be a non-negative number');
    out.minElements = o.minElements;
  }
  return out;
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MB`;

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
