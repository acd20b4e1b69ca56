/**
 * fp16-weights with `{ compute: 'fp16' }` (for GPU targets): the whole graph computes in float16 except the ops in
 * the block list (a default list plus `blockList`), ops of other domains and ops with subgraphs, which stay float32
 * with Casts around them; the graph's inputs are cast to float16 where they enter and its outputs back to float32,
 * so callers still see float32. onnxruntime's CPU execution provider runs such a model by inserting float32 Casts
 * around every op it has no float16 kernel for, so on CPU it is checked for loading and agreement, and its CPU
 * speed says nothing about a GPU.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { attr, castNode } from '../../../onnx/builders';
import { FLOAT16_MAX, float16RoundingError, float16Tensor } from '../../../onnx/float16';
import { findAttribute, isDefaultDomain, subgraphsOf } from '../../../onnx/graph';
import {
  constantFloatValue,
  implicitInputs,
  NameAllocator,
  renameOuterReads,
  setConstantValue,
} from '../../../onnx/graphRewrite';
import { decodeModel, encodeModel, type NodeProto, type TensorProto } from '../../../onnx/model';
import { isExternal, TensorDataType, tensorToFloat32 } from '../../../onnx/tensor';
import { valueTypesFromOnnxruntime } from '../valueTypes';
import type { Fp16Options } from './options';

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

type Precision = 'fp16' | 'fp32';

/** Full float16 compute (see the module comment). Needs onnxruntime to learn the type of every value. */
export async function convertToFloat16Compute(
  bytes: Uint8Array,
  options: Fp16Options = {},
): Promise<{ model?: Uint8Array; report: Fp16ComputeReport }> {
  const model = decodeModel(bytes);
  model.graph ??= {};
  const graph = model.graph;
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
    place(castNode(half, name, TensorDataType.FLOAT, names.fresh(`${name}_cast`)), half);
    report.boundaryCasts++;
  }

  // 2. Weights read in float16 are stored in float16 (clamped to its range).
  const toHalf = (name: string, values: Float32Array, dims: number[]): TensorProto => {
    for (let i = 0; i < values.length; i++) {
      if (values[i] > FLOAT16_MAX) values[i] = FLOAT16_MAX;
      else if (values[i] < -FLOAT16_MAX) values[i] = -FLOAT16_MAX;
      else continue;
      report.clampedValues++;
    }
    report.maxAbsWeightError = Math.max(report.maxAbsWeightError, float16RoundingError(values));
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
    setConstantValue(node, toHalf(name, Float32Array.from(value.values), value.dims));
  }
  const home = (name: string): Precision => (isWeight(name) ? (halfWeights.has(name) ? 'fp16' : 'fp32') : homeOf(name));

  // 3. Each node reads its float inputs at its own precision: Casts where they differ, one per value and direction.
  const casts = new Map<string, string>();
  const castOf = (name: string, to: Precision): string => {
    const key = `${name}\u0000${to}`;
    const hit = casts.get(key);
    if (hit) return hit;
    const out = names.fresh(`${name}_${to}`);
    place(
      castNode(name, out, to === 'fp16' ? TensorDataType.FLOAT16 : TensorDataType.FLOAT, names.fresh(`${out}_cast`)),
      name,
    );
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
