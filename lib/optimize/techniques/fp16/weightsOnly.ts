/**
 * fp16-weights, weights only (the default, for CPU targets): every float32 initializer and Constant tensor of at
 * least `minElements` elements is stored as float16 and a Cast back to float32 is inserted before its consumers,
 * so the model file halves while every kernel still computes in float32 (onnxruntime folds those Casts when it
 * loads the model: latency is unchanged, the disk and image size are not). Inputs and outputs stay float32.
 */
import { castNode } from '../../../onnx/builders';
import { FLOAT16_MAX, float16RoundingError, float16Tensor } from '../../../onnx/float16';
import { forEachGraph, isDefaultDomain } from '../../../onnx/graph';
import { NameAllocator, setConstantValue } from '../../../onnx/graphRewrite';
import { decodeModel, encodeModel, type NodeProto, type OnnxModel } from '../../../onnx/model';
import { elementCount, isExternal, TensorDataType, tensorByteSize, tensorToFloat32 } from '../../../onnx/tensor';
import type { Fp16Options } from './options';

export interface Fp16WeightsReport {
  converted: Array<{ name: string; elements: number; source: 'initializer' | 'constant-node' }>;
  skipped: Array<{ name: string; reason: string }>;
  /** Largest |w − float16(w)| over the converted weights. */
  maxAbsWeightError: number;
  float32Bytes: number;
  float16Bytes: number;
}

function maxAbs(values: Float32Array): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (!(a <= m)) m = a; // NaN counts as out of range
  }
  return m;
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
  const keep = (name: string, reason: string): false => {
    report.skipped.push({ name, reason });
    return false;
  };
  const qualifies = (name: string, values: Float32Array | undefined, count: number, external: boolean): boolean => {
    if (count < minElements) return false; // small scalars and vectors: silently kept (not worth a Cast)
    if (external) return keep(name, 'data in an external file');
    const reader = needsConstant.get(name);
    if (reader)
      return keep(
        name,
        `read by ${reader}, which needs it as a float32 constant (quantization scales, contrib kernels)`,
      );
    const m = maxAbs(values!);
    if (!(m <= FLOAT16_MAX)) return keep(name, `values up to ${m} do not fit float16 (max ${FLOAT16_MAX})`);
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
      front.push(castNode(halfName, name, TensorDataType.FLOAT, names.fresh(`${name}_cast`)));
      const listed = inputs.get(name);
      if (listed) {
        // IR < 4 lists initializers among the inputs: the list follows the rename.
        listed.name = halfName;
        if (listed.type?.tensor_type) listed.type.tensor_type.elem_type = TensorDataType.FLOAT16;
      }
      report.converted.push({ name, elements: count, source: 'initializer' });
      report.maxAbsWeightError = Math.max(report.maxAbsWeightError, float16RoundingError(values!));
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
      setConstantValue(node, half);
      node.output = [halfName];
      nodes.push(castNode(halfName, name, TensorDataType.FLOAT, names.fresh(`${name}_cast`)));
      report.converted.push({ name, elements: count, source: 'constant-node' });
      report.maxAbsWeightError = Math.max(report.maxAbsWeightError, float16RoundingError(values!));
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
