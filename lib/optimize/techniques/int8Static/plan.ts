/** Which nodes of the main graph static quantization rewrites, how, and why it leaves the others alone. */
import { floatAttribute, intAttribute, isDefaultDomain } from '../../../onnx/graph';
import { type ConstantWeight, countUses, GraphScope } from '../../../onnx/graphRewrite';
import type { GraphProto, NodeProto, OnnxModel } from '../../../onnx/model';
import { inferShapes } from '../../../onnx/shapeInference';
import { elementCount, isExternal, TensorDataType, tensorToFloat32 } from '../../../onnx/tensor';
import { QUANTIZABLE_OPS, type QuantizableOp, type Resolved } from './options';

/** A Conv, MatMul or Gemm to quantize: its weight (and bias), what surrounds it, and what the rewrite does with it. */
export interface Planned {
  node: NodeProto;
  label: string;
  opType: QuantizableOp;
  quantizedAs: QuantizableOp;
  weight: ConstantWeight;
  /** Channel axis of the weight as stored. */
  axis: number;
  /** Multiplies the weight before quantization (Gemm's alpha). */
  weightScale: number;
  /** Gemm's transB, kept as is. */
  transB: boolean;
  bias?: { source: ConstantWeight; values: Float32Array };
  /** Add node folded into a Gemm (MatMul + Add). */
  add?: NodeProto;
  input: string;
  /** The node's (or the folded Add's) output. */
  output: string;
  relu?: NodeProto;
  quantizeOutput: boolean;
  /** Set by the rewrite. */
  nameInModel?: string;
}

/** An Add run in 8 bits (QLinearAdd): each input is an activation (quantized upstream or calibrated) or a constant. */
export interface PlannedAdd {
  node: NodeProto;
  label: string;
  inputs: Array<{ name: string; constant?: ConstantWeight }>;
  output: string;
  relu?: NodeProto;
  /** Set by the rewrite. */
  nameInModel?: string;
}

/** Ops that only pass values through: their output keeps the input's scale and zero point. */
export const PASS_THROUGH_OPS = new Set([
  'Flatten',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'MaxPool',
  'GlobalMaxPool',
]);

export interface SkippedNode {
  node: string;
  opType: string;
  reason: string;
}

/** Bias as a float [n] vector from a constant of shape [], [n], [1, n] (row broadcast), times beta; else a reason. */
function biasVector(
  scope: GraphScope,
  name: string,
  n: number,
  beta: number,
): { source: ConstantWeight; values: Float32Array } | string {
  const found = scope.lookupConstant(name);
  if (!found.constant) return `its bias is not a constant: ${found.reason}`;
  const t = found.weight.tensor;
  if (t.data_type !== TensorDataType.FLOAT || isExternal(t)) return `bias '${name}' is not an in-model float32 tensor`;
  const dims = (t.dims ?? []).map(Number);
  const count = elementCount(dims);
  const rowLike = dims.length <= 2 && dims.every((d, i) => d === 1 || (i === dims.length - 1 && d === n));
  if (!rowLike || (count !== 1 && count !== n))
    return `bias '${name}' of shape [${dims.join(', ')}] is not one value per output column`;
  const raw = tensorToFloat32(t);
  return { source: found.weight, values: Float32Array.from({ length: n }, (_, j) => beta * raw[count === 1 ? 0 : j]) };
}

/** Which nodes of the main graph can be quantized, how, and why the others cannot. */
export function planStaticQuantization(
  model: OnnxModel,
  opts: Resolved,
): { planned: Planned[]; adds: PlannedAdd[]; skipped: SkippedNode[] } {
  const graph = model.graph ?? {};
  const scope = new GraphScope(graph, undefined, Number(model.ir_version ?? 0));
  const shapes = inferShapes(graph);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
  const planned: Planned[] = [];
  const skipped: SkippedNode[] = [];
  const claimed = new Set<NodeProto>();
  const nodes = graph.node ?? [];
  const consumers = (name: string) => nodes.filter((n) => (n.input ?? []).includes(name));

  const weightOf = (name: string | undefined, rank: (r: number) => boolean, what: string): ConstantWeight | string => {
    if (!name) return 'it has no weight input';
    const found = scope.lookupConstant(name);
    if (!found.constant) return `its weight is not a constant: ${found.reason}`;
    const t = found.weight.tensor;
    if (t.data_type !== TensorDataType.FLOAT)
      return `weight '${name}' is ${TensorDataType[t.data_type ?? 0] ?? t.data_type}, not float32`;
    if (isExternal(t)) return `weight '${name}' keeps its data in an external file`;
    if (!rank((t.dims ?? []).length)) return `weight '${name}' has ${(t.dims ?? []).length} dims; ${what}`;
    return found.weight;
  };

  for (const node of nodes) {
    const op = node.op_type as QuantizableOp;
    if (!isDefaultDomain(node.domain) || !QUANTIZABLE_OPS.includes(op) || !opts.opTypes.includes(op)) continue;
    const label = node.name || node.output?.[0] || op;
    const skip = (reason: string) => skipped.push({ node: label, opType: op, reason });
    if (opts.excludeNodes.includes(label)) {
      skip('excluded by the excludeNodes option');
      continue;
    }
    const input = node.input?.[0] ?? '';
    if (!input || scope.lookupConstant(input).constant) {
      skip('its data input is a constant (nothing to calibrate; constant folding removes such nodes)');
      continue;
    }
    let plan: Planned | undefined;
    if (op === 'Conv') {
      const weight = weightOf(node.input?.[1], (r) => r >= 3, 'Conv weights have at least 3');
      if (typeof weight === 'string') {
        skip(weight);
        continue;
      }
      const m = Number(weight.tensor.dims![0]);
      const bias = node.input?.[2] ? biasVector(scope, node.input[2], m, 1) : undefined;
      if (typeof bias === 'string') {
        skip(bias);
        continue;
      }
      plan = {
        node,
        label,
        opType: op,
        quantizedAs: 'Conv',
        weight,
        axis: 0,
        weightScale: 1,
        transB: false,
        bias,
        input,
        output: node.output?.[0] ?? '',
        quantizeOutput: true,
      };
    } else if (op === 'Gemm') {
      if (intAttribute(node, 'transA', 0) !== 0) {
        skip('transA = 1 (the int8 Gemm kernel reads A untransposed)');
        continue;
      }
      const weight = weightOf(node.input?.[1], (r) => r === 2, 'Gemm weights have 2');
      if (typeof weight === 'string') {
        skip(weight);
        continue;
      }
      const transB = intAttribute(node, 'transB', 0) === 1;
      const n = Number(weight.tensor.dims![transB ? 0 : 1]);
      const alpha = floatAttribute(node, 'alpha', 1);
      const beta = floatAttribute(node, 'beta', 1);
      if (!(Number.isFinite(alpha) && alpha !== 0)) {
        skip(`alpha is ${alpha}`);
        continue;
      }
      const bias = node.input?.[2] && beta !== 0 ? biasVector(scope, node.input[2], n, beta) : undefined;
      if (typeof bias === 'string') {
        skip(bias);
        continue;
      }
      plan = {
        node,
        label,
        opType: op,
        quantizedAs: 'Gemm',
        weight,
        axis: transB ? 0 : 1,
        weightScale: alpha,
        transB,
        bias,
        input,
        output: node.output?.[0] ?? '',
        quantizeOutput: false,
      };
    } else {
      const weight = weightOf(node.input?.[1], (r) => r === 2, 'only 2-D MatMul weights are quantized');
      if (typeof weight === 'string') {
        skip(weight);
        continue;
      }
      const n = Number(weight.tensor.dims![1]);
      const rank = shapes.get(input)?.length;
      if (rank === 1) {
        skip('its input is a vector');
        continue;
      }
      const y = node.output?.[0] ?? '';
      let asGemm: { add: NodeProto; bias: { source: ConstantWeight; values: Float32Array } } | undefined;
      if (opts.matMulAddToGemm && rank === 2 && countUses(graph, y) === 1 && !graphOutputs.has(y)) {
        const add = consumers(y)[0];
        if (
          add &&
          add.op_type === 'Add' &&
          isDefaultDomain(add.domain) &&
          (add.input ?? []).length === 2 &&
          !claimed.has(add)
        ) {
          const other = add.input![0] === y ? add.input![1] : add.input![0];
          const b = other !== y ? biasVector(scope, other, n, 1) : 'same input twice';
          if (typeof b !== 'string') asGemm = { add, bias: b };
        }
      }
      plan = asGemm
        ? {
            node,
            label,
            opType: op,
            quantizedAs: 'Gemm',
            weight,
            axis: 1,
            weightScale: 1,
            transB: false,
            bias: asGemm.bias,
            add: asGemm.add,
            input,
            output: asGemm.add.output?.[0] ?? '',
            quantizeOutput: false,
          }
        : {
            node,
            label,
            opType: op,
            quantizedAs: 'MatMul',
            weight,
            axis: 1,
            weightScale: 1,
            transB: false,
            input,
            output: y,
            quantizeOutput: true,
          };
      if (asGemm) claimed.add(asGemm.add);
    }
    if (opts.foldRelu && countUses(graph, plan.output) === 1 && !graphOutputs.has(plan.output)) {
      const relu = consumers(plan.output)[0];
      if (relu && relu.op_type === 'Relu' && isDefaultDomain(relu.domain)) {
        plan.relu = relu;
        plan.quantizeOutput = true;
      }
    }
    planned.push(plan);
  }
  return { planned, adds: opts.quantizeAdd ? planAdds(graph, scope, planned, claimed, opts) : [], skipped };
}

/** Adds with at least one input quantized upstream (directly or through value-preserving ops), in graph order. */
function planAdds(
  graph: GraphProto,
  scope: GraphScope,
  planned: Planned[],
  claimed: Set<NodeProto>,
  opts: Resolved,
): PlannedAdd[] {
  const nodes = graph.node ?? [];
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
  const quantized = new Set(
    planned.filter((p) => p.quantizeOutput).map((p) => (p.relu ? (p.relu.output?.[0] ?? '') : p.output)),
  );
  const isQuantized = (name: string): boolean => {
    for (let current = name, hops = 0; hops < 64; hops++) {
      if (quantized.has(current)) return true;
      const producer = scope.producerOf(current);
      if (!producer || !isDefaultDomain(producer.domain) || !PASS_THROUGH_OPS.has(producer.op_type ?? '')) return false;
      current = producer.input?.[0] ?? '';
    }
    return false;
  };
  const adds: PlannedAdd[] = [];
  for (const node of nodes) {
    if (node.op_type !== 'Add' || !isDefaultDomain(node.domain) || claimed.has(node) || (node.input ?? []).length !== 2)
      continue;
    const label = node.name || node.output?.[0] || 'Add';
    if (opts.excludeNodes.includes(label)) continue;
    const inputs: PlannedAdd['inputs'] = [];
    let ok = true;
    for (const name of node.input ?? []) {
      const found = scope.lookupConstant(name);
      if (found.constant) {
        const t = found.weight.tensor;
        if (t.data_type !== TensorDataType.FLOAT || isExternal(t)) ok = false;
        inputs.push({ name, constant: found.weight });
      } else inputs.push({ name });
    }
    if (!ok || !inputs.some((i) => !i.constant && isQuantized(i.name)) || inputs[0].name === inputs[1].name) continue;
    const output = node.output?.[0] ?? '';
    let relu: NodeProto | undefined;
    if (opts.foldRelu && countUses(graph, output) === 1 && !graphOutputs.has(output)) {
      const reader = nodes.find((n) => (n.input ?? []).includes(output));
      if (reader && reader.op_type === 'Relu' && isDefaultDomain(reader.domain)) relu = reader;
    }
    adds.push({ node, label, inputs, output, relu });
    quantized.add(relu ? (relu.output?.[0] ?? '') : output);
  }
  return adds;
}
