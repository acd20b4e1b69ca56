/**
 * Recognising an MLP by structure: one float input ([batch, features], or [batch, fixed dims...] followed by a
 * Flatten), a chain of linear layers (MatMul + Add of a constant bias, or Gemm) each followed by an activation
 * (Relu, LeakyRelu, Tanh, Sigmoid), a last linear layer, and optionally a Softmax/LogSoftmax/Sigmoid head producing
 * the one output. Identity and inference-time Dropout nodes may sit in the chain; nothing else may be in the graph.
 */
import { floatAttribute, intAttribute, isDefaultDomain } from '../../../onnx/graph';
import { type ConstantWeight, countUses, defaultOpsetVersion, GraphScope } from '../../../onnx/graphRewrite';
import type { GraphProto, NodeProto, OnnxModel, TensorProto } from '../../../onnx/model';
import { isExternal, TensorDataType, tensorToFloat32 } from '../../../onnx/tensor';

export type Activation = 'Relu' | 'LeakyRelu' | 'Tanh' | 'Sigmoid';
const ACTIVATIONS = new Set<string>(['Relu', 'LeakyRelu', 'Tanh', 'Sigmoid']);
const HEADS = new Set<string>(['Softmax', 'LogSoftmax', 'Sigmoid']);

export interface MlpLayer {
  /** MatMul (with its bias Add, if any) or Gemm. */
  node: NodeProto;
  add?: NodeProto;
  weight: ConstantWeight;
  bias?: ConstantWeight;
  /** Gemm's transB: the weight is stored [out, in]. */
  transB: boolean;
  inDim: number;
  outDim: number;
  /** Effective y = x · w + b, w as [inDim, outDim] row-major (alpha, beta and transB applied). */
  w: Float32Array;
  b: Float32Array;
  /** Activation after the layer (absent on the last). */
  activation?: { node: NodeProto; kind: Activation; alpha: number };
  /** The tensor the layer's linear part writes (the Add's or the Gemm's output). */
  linearOutput: string;
}

export interface MlpStructure {
  input: string;
  /** Dims of one input row (without the batch dim): [features], or e.g. [1, 28, 28] before a Flatten. */
  inputRowDims: number[];
  /** The Flatten that turns a [batch, ...] input into rows, if any. */
  flatten?: NodeProto;
  output: string;
  layers: MlpLayer[];
  /** Softmax/LogSoftmax/Sigmoid producing the output from the last layer's logits. */
  head?: { node: NodeProto; kind: string };
  /** The last linear layer's output: what the student is trained to match. */
  logits: string;
}

/** The model as an MLP, or why it is not one (in words a user can act on). */
export function detectMlp(model: OnnxModel): MlpStructure | string {
  const graph: GraphProto = model.graph ?? {};
  const scope = new GraphScope(graph, undefined, Number(model.ir_version ?? 0));
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name));
  if (inputs.length !== 1) return `it has ${inputs.length} inputs; an MLP has one`;
  if ((graph.output ?? []).length !== 1) return `it has ${(graph.output ?? []).length} outputs; an MLP has one`;
  const input = inputs[0];
  const inShape = input.type?.tensor_type?.shape?.dim ?? [];
  const rowDims = inShape.slice(1).map((d) => (d.dim_value !== undefined ? Number(d.dim_value) : NaN));
  if (
    input.type?.tensor_type?.elem_type !== TensorDataType.FLOAT ||
    inShape.length < 2 ||
    !rowDims.every((d) => d > 0)
  ) {
    return `its input '${input.name}' is not a float32 tensor [batch, features] (or [batch, fixed dims...] before a Flatten)`;
  }
  const output = graph.output![0].name ?? '';
  const nodes = graph.node ?? [];
  const readers = (name: string) => nodes.filter((n) => (n.input ?? []).includes(name));
  const used = new Set<NodeProto>();
  const ops = [
    ...new Set(nodes.filter((n) => !(n.op_type === 'Constant' && isDefaultDomain(n.domain))).map((n) => n.op_type)),
  ]
    .sort()
    .join(', ');
  const notMlp = (why: string) => `${why} (ops: ${ops})`;
  const single = (name: string): NodeProto | string => {
    if (countUses(graph, name) !== 1) return `'${name}' is read ${countUses(graph, name)} times (a branching graph)`;
    const r = readers(name);
    return r.length === 1 ? r[0] : `'${name}' is read by a subgraph`;
  };
  const constFloat = (name: string | undefined, what: string): ConstantWeight | string => {
    if (!name) return `${what} is missing`;
    const found = scope.lookupConstant(name);
    if (!found.constant) return `${what} '${name}' is not a constant`;
    const t = found.weight.tensor;
    if (t.data_type !== TensorDataType.FLOAT || isExternal(t))
      return `${what} '${name}' is not an in-model float32 tensor`;
    return found.weight;
  };

  const layers: MlpLayer[] = [];
  const weightsSeen = new Set<TensorProto>();
  let x = input.name ?? '';
  let flatten: NodeProto | undefined;
  // Exporters put Identity and (inference-time) Dropout nodes in a chain; they change nothing.
  const skipPassThrough = (name: string): string => {
    for (;;) {
      const r = readers(name);
      if (
        r.length !== 1 ||
        countUses(graph, name) !== 1 ||
        !isDefaultDomain(r[0].domain) ||
        (r[0].op_type !== 'Identity' && r[0].op_type !== 'Dropout')
      )
        return name;
      if (r[0].op_type === 'Dropout' && (r[0].output ?? []).filter(Boolean).length > 1) return name;
      used.add(r[0]);
      name = r[0].output?.[0] ?? '';
    }
  };
  x = skipPassThrough(x);
  const first = readers(x);
  if (
    first.length === 1 &&
    first[0].op_type === 'Flatten' &&
    isDefaultDomain(first[0].domain) &&
    intAttribute(first[0], 'axis', 1) === 1
  ) {
    flatten = first[0];
    used.add(flatten);
    x = skipPassThrough(flatten.output?.[0] ?? '');
  } else if (inShape.length !== 2) {
    return notMlp(`its input '${input.name}' has ${inShape.length} dims and is not flattened first`);
  }
  let head: MlpStructure['head'];
  for (;;) {
    const node = single(x);
    if (typeof node === 'string') return notMlp(node);
    if (
      !isDefaultDomain(node.domain) ||
      (node.op_type !== 'MatMul' && node.op_type !== 'Gemm') ||
      node.input?.[0] !== x
    ) {
      return notMlp(`'${x}' feeds ${node.op_type}, where a MatMul or Gemm layer was expected`);
    }
    used.add(node);
    const weight = constFloat(node.input?.[1], 'weight');
    if (typeof weight === 'string') return notMlp(weight);
    const dims = (weight.tensor.dims ?? []).map(Number);
    if (dims.length !== 2) return notMlp(`weight '${weight.name}' is not 2-D`);
    if (weightsSeen.has(weight.tensor)) return notMlp(`weight '${weight.name}' is shared between layers`);
    weightsSeen.add(weight.tensor);
    let transB = false;
    let alpha = 1;
    let beta = 1;
    let biasName: string | undefined;
    let add: NodeProto | undefined;
    let linearOutput = node.output?.[0] ?? '';
    if (node.op_type === 'Gemm') {
      if (intAttribute(node, 'transA', 0) !== 0) return notMlp(`Gemm '${node.name}' transposes its input`);
      transB = intAttribute(node, 'transB', 0) === 1;
      alpha = floatAttribute(node, 'alpha', 1);
      beta = floatAttribute(node, 'beta', 1);
      biasName = node.input?.[2] || undefined;
    } else {
      const next = linearOutput === output ? undefined : single(linearOutput);
      if (next && typeof next !== 'string' && next.op_type === 'Add' && isDefaultDomain(next.domain)) {
        const other = next.input?.[0] === linearOutput ? next.input?.[1] : next.input?.[0];
        const found = other ? scope.lookupConstant(other) : undefined;
        if (found?.constant) {
          add = next;
          biasName = other;
          used.add(next);
          linearOutput = next.output?.[0] ?? '';
        }
      }
    }
    const inDim = transB ? dims[1] : dims[0];
    const outDim = transB ? dims[0] : dims[1];
    const raw = tensorToFloat32(weight.tensor);
    const w = new Float32Array(inDim * outDim);
    for (let i = 0; i < inDim; i++)
      for (let j = 0; j < outDim; j++) w[i * outDim + j] = alpha * (transB ? raw[j * inDim + i] : raw[i * outDim + j]);
    const b = new Float32Array(outDim);
    let bias: ConstantWeight | undefined;
    if (biasName) {
      const found = constFloat(biasName, 'bias');
      if (typeof found === 'string') return notMlp(found);
      const values = tensorToFloat32(found.tensor);
      if (values.length !== outDim && values.length !== 1)
        return notMlp(`bias '${biasName}' does not hold one value per output`);
      for (let j = 0; j < outDim; j++) b[j] = beta * values[values.length === 1 ? 0 : j];
      bias = found;
      if (weightsSeen.has(found.tensor)) return notMlp(`bias '${biasName}' is shared`);
      weightsSeen.add(found.tensor);
    }
    const prev = layers[layers.length - 1];
    if (prev && prev.outDim !== inDim) return notMlp(`layer widths do not chain (${prev.outDim} → ${inDim})`);
    if (!prev && inDim !== rowDims.reduce((a, b) => a * b, 1))
      return notMlp(`the first layer reads ${inDim} features, the input rows have ${rowDims.join('x')}`);
    const layer: MlpLayer = { node, add, weight, bias, transB, inDim, outDim, w, b, linearOutput };
    layers.push(layer);
    if (linearOutput === output) break;
    const after = single(linearOutput);
    if (typeof after === 'string') return notMlp(after);
    const afterOut = after.output?.[0] ?? '';
    if (isDefaultDomain(after.domain) && HEADS.has(after.op_type ?? '') && afterOut === output) {
      if (after.op_type !== 'Sigmoid') {
        const axis = intAttribute(after, 'axis', defaultOpsetVersion(model) >= 13 ? -1 : 1);
        if (axis !== -1 && axis !== 1) return notMlp(`${after.op_type} over axis ${axis}`);
      }
      used.add(after);
      head = { node: after, kind: after.op_type ?? '' };
      break;
    }
    if (!isDefaultDomain(after.domain) || !ACTIVATIONS.has(after.op_type ?? ''))
      return notMlp(`layer output '${linearOutput}' feeds ${after.op_type}, not an activation`);
    if (afterOut === output) return notMlp('the output comes from an activation that is not a classifier head');
    used.add(after);
    layer.activation = {
      node: after,
      kind: after.op_type as Activation,
      alpha: after.op_type === 'LeakyRelu' ? floatAttribute(after, 'alpha', 0.01) : 0,
    };
    x = skipPassThrough(afterOut);
  }
  const extra = nodes.filter((n) => !used.has(n) && !(n.op_type === 'Constant' && isDefaultDomain(n.domain)));
  if (extra.length)
    return notMlp(
      `it has ${extra.length} node(s) outside a MatMul/Gemm + activation chain (${[...new Set(extra.map((n) => n.op_type))].join(', ')})`,
    );
  if (layers.length < 2) return notMlp('it has a single linear layer: no hidden width to reduce');
  return {
    input: input.name ?? '',
    inputRowDims: rowDims,
    flatten,
    output,
    layers,
    head,
    logits: layers[layers.length - 1].linearOutput,
  };
}
