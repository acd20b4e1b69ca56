/**
 * Knowledge distillation, where Ferry can run it itself: MLP classifiers and regressors.
 *
 * An MLP is recognised by structure: one float input ([batch, features], or [batch, fixed dims...] followed by a
 * Flatten), a chain of linear layers (MatMul + Add of a constant bias, or Gemm) each followed by an activation
 * (Relu, LeakyRelu, Tanh, Sigmoid), a last linear layer, and optionally a Softmax/LogSoftmax/Sigmoid head producing
 * the one output. Identity and inference-time Dropout nodes may sit in the chain; nothing else may be in the graph.
 *
 * The student has the same layers, narrower (each hidden width × `widthFactor`, default 0.5, or `hiddenDims`).
 * It starts from the teacher's most important hidden units (incoming × outgoing weight norms: a structured
 * prune) and is then trained in TypeScript (Float32Array math, Adam, mini-batches, seeded shuffling) to match
 * the teacher's logits (the last linear layer's output, computed by onnxruntime on the training inputs), with
 * MSE (default) or KL divergence of temperature-softened softmaxes. Training inputs are the user's calibration
 * samples (topped up with jittered copies when there are few) or generated uniform [-1, 1) rows; generated inputs
 * teach the student the teacher's function on that box, not on real data, so agreement on real inputs can be lower.
 *
 * The student is exported as ONNX through the teacher's own graph (same node types, input/output names,
 * opset and metadata; only the weights and hidden widths change) and measured against the teacher in
 * onnxruntime on held-out inputs: max abs error, cosine similarity, top-1 agreement.
 *
 * Any other architecture (convolutions, attention, recurrent or branching graphs) needs a training job with the
 * model's own framework and data: the technique says so and does not claim to have run.
 */

import * as ort from 'onnxruntime-node';
import type { ModelAnalysis } from '../../onnx/analyze';
import { findAttribute, isDefaultDomain } from '../../onnx/graph';
import { type ConstantWeight, countUses, GraphScope } from '../../onnx/graphRewrite';
import { seededUniform } from '../../onnx/mlp';
import {
  decodeModel,
  encodeModel,
  type GraphProto,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
} from '../../onnx/model';
import { isExternal, TensorDataType, tensorToFloat32 } from '../../onnx/tensor';
import type { OptimizationTechnique, TechniqueContext, TechniqueResult } from '../technique';
import { augmentWithOutputs, generateCalibrationData, userCalibrationData } from './calibration';
import { type Agreement, agreementOf, describeAgreement, type OrtFeeds, runBatches } from './modelAgreement';

export const DISTILL_MLP_ID = 'distill-mlp';

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
    Number(findAttribute(first[0], 'axis')?.i ?? 1) === 1
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
      if (Number(findAttribute(node, 'transA')?.i ?? 0) !== 0)
        return notMlp(`Gemm '${node.name}' transposes its input`);
      transB = Number(findAttribute(node, 'transB')?.i ?? 0) === 1;
      alpha = findAttribute(node, 'alpha')?.f ?? 1;
      beta = findAttribute(node, 'beta')?.f ?? 1;
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
        const axis = Number(findAttribute(after, 'axis')?.i ?? (defaultOpset(model) >= 13 ? -1 : 1));
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
      alpha: after.op_type === 'LeakyRelu' ? (findAttribute(after, 'alpha')?.f ?? 0.01) : 0,
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

function defaultOpset(model: OnnxModel): number {
  return Number((model.opset_import ?? []).find((o) => isDefaultDomain(o.domain))?.version ?? 0);
}

// ---------------------------------------------------------------------------------------------------------
// The student network and its training.

export interface StudentLayer {
  inDim: number;
  outDim: number;
  w: Float32Array;
  b: Float32Array;
  hasBias: boolean;
  activation?: { kind: Activation; alpha: number };
}

/** Keeps the `width` hidden units of each hidden layer whose incoming × outgoing weight norms are largest. */
export function studentFromTeacherUnits(layers: MlpLayer[], widths: number[]): StudentLayer[] {
  const keep: number[][] = [];
  for (let l = 0; l < layers.length - 1; l++) {
    const cur = layers[l];
    const next = layers[l + 1];
    const score = new Float64Array(cur.outDim);
    for (let j = 0; j < cur.outDim; j++) {
      let incoming = cur.b[j] * cur.b[j];
      for (let i = 0; i < cur.inDim; i++) incoming += cur.w[i * cur.outDim + j] ** 2;
      let outgoing = 0;
      for (let k = 0; k < next.outDim; k++) outgoing += next.w[j * next.outDim + k] ** 2;
      score[j] = Math.sqrt(incoming * outgoing);
    }
    const order = Array.from({ length: cur.outDim }, (_, j) => j).sort((a, b) => score[b] - score[a] || a - b);
    keep.push(order.slice(0, widths[l]).sort((a, b) => a - b));
  }
  return layers.map((layer, l) => {
    const rows = l === 0 ? Array.from({ length: layer.inDim }, (_, i) => i) : keep[l - 1];
    const cols = l === layers.length - 1 ? Array.from({ length: layer.outDim }, (_, j) => j) : keep[l];
    const w = new Float32Array(rows.length * cols.length);
    rows.forEach((r, i) => cols.forEach((c, j) => (w[i * cols.length + j] = layer.w[r * layer.outDim + c])));
    return {
      inDim: rows.length,
      outDim: cols.length,
      w,
      b: Float32Array.from(cols, (c) => layer.b[c]),
      hasBias: layer.bias !== undefined,
      activation: layer.activation ? { kind: layer.activation.kind, alpha: layer.activation.alpha } : undefined,
    };
  });
}

/** Glorot-uniform weights, zero biases, seeded. */
export function randomStudent(layers: MlpLayer[], widths: number[], seed: number): StudentLayer[] {
  const rand = seededUniform(seed);
  const dims = [layers[0].inDim, ...widths, layers[layers.length - 1].outDim];
  return layers.map((layer, l) => {
    const limit = Math.sqrt(6 / (dims[l] + dims[l + 1]));
    return {
      inDim: dims[l],
      outDim: dims[l + 1],
      w: Float32Array.from({ length: dims[l] * dims[l + 1] }, () => (rand() * 2 - 1) * limit),
      b: new Float32Array(dims[l + 1]),
      hasBias: layer.bias !== undefined,
      activation: layer.activation ? { kind: layer.activation.kind, alpha: layer.activation.alpha } : undefined,
    };
  });
}

function activate(kind: Activation, alpha: number, v: Float32Array): void {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    switch (kind) {
      case 'Relu':
        v[i] = Math.max(x, 0);
        break;
      case 'LeakyRelu':
        v[i] = x > 0 ? x : alpha * x;
        break;
      case 'Tanh':
        v[i] = Math.tanh(x);
        break;
      case 'Sigmoid':
        v[i] = 1 / (1 + Math.exp(-x));
        break;
    }
  }
}

/** d(activation)/d(pre-activation), written in terms of the activation's output y, times the incoming gradient. */
function activationGrad(kind: Activation, alpha: number, y: Float32Array, grad: Float32Array): void {
  for (let i = 0; i < grad.length; i++) {
    const v = y[i];
    switch (kind) {
      case 'Relu':
        if (!(v > 0)) grad[i] = 0;
        break;
      case 'LeakyRelu':
        if (!(v > 0)) grad[i] *= alpha;
        break;
      case 'Tanh':
        grad[i] *= 1 - v * v;
        break;
      case 'Sigmoid':
        grad[i] *= v * (1 - v);
        break;
    }
  }
}

// Dense kernels on row-major Float32Arrays. Four rows at a time: each weight is loaded once per four
// multiply-adds, which is what makes plain JavaScript reach ~0.5 GMAC/s here instead of ~0.2.

/** out[rows × n] = a[rows × k] · w[k × n] + b */
export function linearForward(
  a: Float32Array,
  rows: number,
  k: number,
  w: Float32Array,
  b: Float32Array,
  n: number,
  out: Float32Array,
): void {
  for (let r = 0; r < rows; r++) out.set(b, r * n);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const o0 = r * n;
    const o1 = o0 + n;
    const o2 = o1 + n;
    const o3 = o2 + n;
    for (let i = 0; i < k; i++) {
      const a0 = a[r * k + i];
      const a1 = a[(r + 1) * k + i];
      const a2 = a[(r + 2) * k + i];
      const a3 = a[(r + 3) * k + i];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) {
        const wv = w[wo + j];
        out[o0 + j] += a0 * wv;
        out[o1 + j] += a1 * wv;
        out[o2 + j] += a2 * wv;
        out[o3 + j] += a3 * wv;
      }
    }
  }
  for (; r < rows; r++) {
    const o = r * n;
    for (let i = 0; i < k; i++) {
      const av = a[r * k + i];
      if (av === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) out[o + j] += av * w[wo + j];
    }
  }
}

/** gw[k × n] = a[rows × k]ᵀ · d[rows × n] */
function weightGradient(a: Float32Array, rows: number, k: number, d: Float32Array, n: number, gw: Float32Array): void {
  gw.fill(0);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const d0 = r * n;
    const d1 = d0 + n;
    const d2 = d1 + n;
    const d3 = d2 + n;
    for (let i = 0; i < k; i++) {
      const a0 = a[r * k + i];
      const a1 = a[(r + 1) * k + i];
      const a2 = a[(r + 2) * k + i];
      const a3 = a[(r + 3) * k + i];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) gw[wo + j] += a0 * d[d0 + j] + a1 * d[d1 + j] + a2 * d[d2 + j] + a3 * d[d3 + j];
    }
  }
  for (; r < rows; r++) {
    const d0 = r * n;
    for (let i = 0; i < k; i++) {
      const av = a[r * k + i];
      if (av === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) gw[wo + j] += av * d[d0 + j];
    }
  }
}

/** out[rows × k] = d[rows × n] · w[k × n]ᵀ */
function inputGradient(d: Float32Array, rows: number, n: number, w: Float32Array, k: number, out: Float32Array): void {
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const d0 = r * n;
    const d1 = d0 + n;
    const d2 = d1 + n;
    const d3 = d2 + n;
    for (let i = 0; i < k; i++) {
      const wo = i * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < n; j++) {
        const wv = w[wo + j];
        s0 += d[d0 + j] * wv;
        s1 += d[d1 + j] * wv;
        s2 += d[d2 + j] * wv;
        s3 += d[d3 + j] * wv;
      }
      out[r * k + i] = s0;
      out[(r + 1) * k + i] = s1;
      out[(r + 2) * k + i] = s2;
      out[(r + 3) * k + i] = s3;
    }
  }
  for (; r < rows; r++) {
    const d0 = r * n;
    for (let i = 0; i < k; i++) {
      const wo = i * n;
      let s = 0;
      for (let j = 0; j < n; j++) s += d[d0 + j] * w[wo + j];
      out[r * k + i] = s;
    }
  }
}

/** Forward pass of the student; returns the activations of every layer (the last is the logits). */
export function studentForward(layers: StudentLayer[], x: Float32Array, rows: number): Float32Array[] {
  const acts: Float32Array[] = [];
  let a = x;
  for (const layer of layers) {
    const out = new Float32Array(rows * layer.outDim);
    linearForward(a, rows, layer.inDim, layer.w, layer.b, layer.outDim, out);
    if (layer.activation) activate(layer.activation.kind, layer.activation.alpha, out);
    acts.push(out);
    a = out;
  }
  return acts;
}

export type DistillLoss = 'mse' | 'kl';

function softmaxRows(z: Float32Array, rows: number, n: number, temperature: number): Float32Array {
  const p = new Float32Array(z.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, z[r * n + j] / temperature);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += p[r * n + j] = Math.exp(z[r * n + j] / temperature - max);
    for (let j = 0; j < n; j++) p[r * n + j] /= sum;
  }
  return p;
}

/** Loss and its gradient with respect to the student's logits, averaged over the rows. */
export function distillLoss(
  kind: DistillLoss,
  student: Float32Array,
  teacher: Float32Array,
  rows: number,
  n: number,
  temperature: number,
): { loss: number; grad: Float32Array } {
  const grad = new Float32Array(student.length);
  let loss = 0;
  if (kind === 'mse') {
    for (let i = 0; i < student.length; i++) {
      const d = student[i] - teacher[i];
      loss += d * d;
      grad[i] = (2 * d) / (rows * n);
    }
    return { loss: loss / (rows * n), grad };
  }
  // KL(teacher ‖ student) of softmax(z / T), scaled by T² so gradients keep their size across temperatures.
  const ps = softmaxRows(student, rows, n, temperature);
  const pt = softmaxRows(teacher, rows, n, temperature);
  for (let i = 0; i < student.length; i++) {
    if (pt[i] > 0) loss += pt[i] * Math.log(pt[i] / Math.max(ps[i], 1e-30));
    grad[i] = (temperature * (ps[i] - pt[i])) / rows;
  }
  return { loss: (loss * temperature * temperature) / rows, grad };
}

class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;
  constructor(
    private readonly params: Float32Array[],
    private readonly lr: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }
  step(grads: Float32Array[], lr = this.lr): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    this.params.forEach((p, k) => {
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < p.length; i++) {
        m[i] = this.beta1 * m[i] + (1 - this.beta1) * g[i];
        v[i] = this.beta2 * v[i] + (1 - this.beta2) * g[i] * g[i];
        p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + this.eps);
      }
    });
  }
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  loss: DistillLoss;
  temperature: number;
  seed: number;
  /** Stop starting new epochs after this long (ms); an epoch in progress also stops at its next batch. */
  timeBudgetMs: number;
  onProgress?: (fraction: number, detail: string) => void;
}

export interface TrainResult {
  epochs: number;
  stoppedByBudget: boolean;
  lossHistory: number[];
  elapsedMs: number;
}

/** One backward pass over a batch; accumulates into grads (w0, b0, w1, b1, ...). */
function backward(
  layers: StudentLayer[],
  x: Float32Array,
  rows: number,
  acts: Float32Array[],
  dLogits: Float32Array,
  grads: Float32Array[],
): void {
  let delta = dLogits;
  for (let l = layers.length - 1; l >= 0; l--) {
    const layer = layers[l];
    const input = l === 0 ? x : acts[l - 1];
    const gw = grads[2 * l];
    const gb = grads[2 * l + 1];
    const n = layer.outDim;
    const k = layer.inDim;
    weightGradient(input, rows, k, delta, n, gw);
    gb.fill(0);
    if (layer.hasBias) for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) gb[j] += delta[r * n + j];
    if (l === 0) break;
    const prev = new Float32Array(rows * k);
    inputGradient(delta, rows, n, layer.w, k, prev);
    const below = layers[l - 1].activation;
    if (below) activationGrad(below.kind, below.alpha, acts[l - 1], prev);
    delta = prev;
  }
}

/** Loss and gradients (w0, b0, w1, b1, ...) of the student on one batch; what training steps on, exposed for checks. */
export function studentGradients(
  layers: StudentLayer[],
  x: Float32Array,
  rows: number,
  targets: Float32Array,
  loss: DistillLoss,
  temperature = 2,
): { loss: number; grads: Float32Array[] } {
  const grads = layers.flatMap((l) => [new Float32Array(l.w.length), new Float32Array(l.b.length)]);
  const acts = studentForward(layers, x, rows);
  const outDim = layers[layers.length - 1].outDim;
  const value = distillLoss(loss, acts[acts.length - 1], targets, rows, outDim, temperature);
  backward(layers, x, rows, acts, value.grad, grads);
  return { loss: value.loss, grads };
}

/** Trains the student on (x, teacher logits) pairs, in place. Deterministic for a given seed. */
export function trainStudent(
  layers: StudentLayer[],
  x: Float32Array,
  targets: Float32Array,
  rows: number,
  opts: TrainOptions,
): TrainResult {
  const inDim = layers[0].inDim;
  const outDim = layers[layers.length - 1].outDim;
  const params = layers.flatMap((l) => [l.w, l.b]);
  const grads = params.map((p) => new Float32Array(p.length));
  const adam = new Adam(params, opts.learningRate);
  const rand = seededUniform(opts.seed);
  const order = Array.from({ length: rows }, (_, i) => i);
  const start = Date.now();
  const lossHistory: number[] = [];
  let stoppedByBudget = false;
  let epochs = 0;
  let lastBeat = 0;
  const totalSteps = opts.epochs * Math.ceil(rows / opts.batchSize);
  let step = 0;
  const bx = new Float32Array(opts.batchSize * inDim);
  const bt = new Float32Array(opts.batchSize * outDim);
  for (let epoch = 0; epoch < opts.epochs && !stoppedByBudget; epoch++) {
    for (let i = rows - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let epochLoss = 0;
    let batches = 0;
    for (let s = 0; s < rows; s += opts.batchSize) {
      if (Date.now() - start > opts.timeBudgetMs) {
        stoppedByBudget = true;
        break;
      }
      const n = Math.min(opts.batchSize, rows - s);
      for (let r = 0; r < n; r++) {
        const src = order[s + r];
        bx.set(x.subarray(src * inDim, (src + 1) * inDim), r * inDim);
        bt.set(targets.subarray(src * outDim, (src + 1) * outDim), r * outDim);
      }
      const xb = bx.subarray(0, n * inDim);
      const acts = studentForward(layers, xb, n);
      const { loss, grad } = distillLoss(
        opts.loss,
        acts[acts.length - 1],
        bt.subarray(0, n * outDim),
        n,
        outDim,
        opts.temperature,
      );
      backward(layers, xb, n, acts, grad, grads);
      for (let l = 0; l < layers.length; l++) if (!layers[l].hasBias) grads[2 * l + 1].fill(0);
      // Cosine decay to 10% of the learning rate over the planned steps.
      const lr =
        opts.learningRate * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps)));
      adam.step(grads, lr);
      step++;
      epochLoss += loss;
      batches++;
      const now = Date.now();
      if (now - lastBeat > 500) {
        lastBeat = now;
        const fraction = Math.max(step / totalSteps, (now - start) / opts.timeBudgetMs);
        opts.onProgress?.(
          Math.min(1, fraction),
          `epoch ${epoch + 1}/${opts.epochs}, loss ${(epochLoss / batches).toPrecision(3)}`,
        );
      }
    }
    if (batches > 0) {
      lossHistory.push(epochLoss / batches);
      if (!stoppedByBudget || batches * opts.batchSize >= rows) epochs++;
    }
  }
  return { epochs, stoppedByBudget, lossHistory, elapsedMs: Date.now() - start };
}

// ---------------------------------------------------------------------------------------------------------
// Export.

function setFloat32(t: TensorProto, dims: number[], values: Float32Array): void {
  t.dims = dims;
  t.data_type = TensorDataType.FLOAT;
  t.raw_data = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  t.float_data = [];
}

/** The teacher's graph with the student's weights and widths. */
export function exportStudent(teacherBytes: Uint8Array, student: StudentLayer[], note: string): Uint8Array {
  const model = decodeModel(teacherBytes);
  const mlp = detectMlp(model);
  if (typeof mlp === 'string') throw new Error(`the teacher is not an MLP: ${mlp}`);
  const changed = new Set<string>();
  mlp.layers.forEach((layer, l) => {
    const s = student[l];
    if (layer.transB) {
      const t = new Float32Array(s.w.length);
      for (let i = 0; i < s.inDim; i++) for (let j = 0; j < s.outDim; j++) t[j * s.inDim + i] = s.w[i * s.outDim + j];
      setFloat32(layer.weight.tensor, [s.outDim, s.inDim], t);
    } else {
      setFloat32(layer.weight.tensor, [s.inDim, s.outDim], s.w);
    }
    if (layer.bias) setFloat32(layer.bias.tensor, [s.outDim], s.b);
    if (layer.node.op_type === 'Gemm') {
      // alpha and beta were folded into the trained weights.
      layer.node.attribute = (layer.node.attribute ?? []).filter((a) => a.name !== 'alpha' && a.name !== 'beta');
    }
    for (const n of [layer.node, layer.add, layer.activation?.node]) for (const o of n?.output ?? []) changed.add(o);
  });
  const graph = model.graph!;
  // value_info of the hidden tensors described the teacher's widths.
  graph.value_info = (graph.value_info ?? []).filter((v) => !changed.has(v.name ?? '') || v.name === mlp.output);
  for (const w of [...mlp.layers.map((l) => l.weight), ...mlp.layers.flatMap((l) => (l.bias ? [l.bias] : []))]) {
    graph.value_info = graph.value_info.filter((v) => v.name !== w.name);
  }
  model.metadata_props = [
    ...(model.metadata_props ?? []).filter((p) => p.key !== 'ferry.distilled'),
    { key: 'ferry.distilled', value: note },
  ];
  return encodeModel(model);
}

// ---------------------------------------------------------------------------------------------------------
// The technique.

export interface DistillOptions {
  /** Hidden widths of the student as a share of the teacher's (default 0.5). */
  widthFactor?: number;
  /** Explicit hidden widths (one per hidden layer); overrides widthFactor. */
  hiddenDims?: number[];
  epochs?: number;
  /** Training rows (default 4096). */
  samples?: number;
  batchSize?: number;
  learningRate?: number;
  loss?: DistillLoss;
  /** Softmax temperature for loss 'kl' (default 2). */
  temperature?: number;
  /** Whole technique (teacher outputs, training, export, check) should finish within this (default 60 s). */
  timeBudgetMs?: number;
  /** 'teacher-units' (default): start from the teacher's strongest hidden units; 'random': Glorot init. */
  init?: 'teacher-units' | 'random';
  seed?: number;
  /** Held-out rows for the agreement check (default 1024). */
  holdoutRows?: number;
}

export function externalTrainingReason(why: string): string {
  return (
    `distillation needs an external training job for this architecture: Ferry trains students itself only for MLP classifiers and regressors ` +
    `(a chain of MatMul/Gemm + bias + activation), and this model is not one: ${why}. Train a smaller student with the model's own framework ` +
    `and data (typically 2-4x fewer parameters for a few points of accuracy), then deploy it as a new version; nothing was trained here.`
  );
}

function readOptions(raw: Record<string, unknown> | undefined): DistillOptions {
  const o = raw ?? {};
  const out: DistillOptions = {};
  const positive = (k: keyof DistillOptions, integer = false) => {
    const v = o[k];
    if (v === undefined) return;
    if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v)))
      throw new Error(`option ${k} must be a positive ${integer ? 'integer' : 'number'}`);
    (out as Record<string, unknown>)[k] = v;
  };
  positive('widthFactor');
  positive('epochs', true);
  positive('samples', true);
  positive('batchSize', true);
  positive('learningRate');
  positive('temperature');
  positive('timeBudgetMs');
  positive('holdoutRows', true);
  if (o.seed !== undefined) {
    if (typeof o.seed !== 'number' || !Number.isInteger(o.seed)) throw new Error('option seed must be an integer');
    out.seed = o.seed;
  }
  if (out.widthFactor !== undefined && out.widthFactor >= 1)
    throw new Error('option widthFactor must be below 1 (the student is narrower)');
  if (o.hiddenDims !== undefined) {
    if (!Array.isArray(o.hiddenDims) || !o.hiddenDims.every((d) => Number.isInteger(d) && (d as number) > 0))
      throw new Error('option hiddenDims must be a list of positive integers');
    out.hiddenDims = o.hiddenDims as number[];
  }
  if (o.loss !== undefined) {
    if (o.loss !== 'mse' && o.loss !== 'kl') throw new Error("option loss must be 'mse' or 'kl'");
    out.loss = o.loss;
  }
  if (o.init !== undefined) {
    if (o.init !== 'teacher-units' && o.init !== 'random')
      throw new Error("option init must be 'teacher-units' or 'random'");
    out.init = o.init;
  }
  return out;
}

/** Rows of a [rows, features] float32 input, from onnxruntime feeds. */
function rowsOf(batches: OrtFeeds[], input: string, features: number): Float32Array {
  const parts = batches.map((b) => b[input].data as Float32Array);
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  if (total % features !== 0) throw new Error(`input '${input}' does not split into rows of ${features}`);
  return out;
}

/** Runs a model over rows in chunks (of the fixed batch size when the input has one) and concatenates `output`. */
async function runRows(
  model: Uint8Array,
  input: string,
  output: string,
  rows: Float32Array,
  rowDims: number[],
  fixedBatch: number | undefined,
): Promise<Float32Array> {
  const features = rowDims.reduce((a, b) => a * b, 1);
  const count = rows.length / features;
  const chunk = fixedBatch ?? 256;
  const batches: OrtFeeds[] = [];
  for (let r = 0; r < count; r += chunk) {
    const n = fixedBatch ?? Math.min(chunk, count - r);
    if (r + n > count) break;
    batches.push({ [input]: new ort.Tensor('float32', rows.slice(r * features, (r + n) * features), [n, ...rowDims]) });
  }
  const outs = await runBatches(model, batches);
  const parts = outs.map((o) => o[output].data as Float32Array);
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function parameterCount(layers: Array<{ inDim: number; outDim: number; hasBias?: boolean; bias?: unknown }>): number {
  return layers.reduce(
    (a, l) => a + l.inDim * l.outDim + ('hasBias' in l ? (l.hasBias ? l.outDim : 0) : l.bias ? l.outDim : 0),
    0,
  );
}

export const distillMlp: OptimizationTechnique = {
  id: DISTILL_MLP_ID,
  title: 'Distillation into a narrower MLP',
  description:
    "For MLP classifiers and regressors: trains a student with narrower hidden layers (half width by default) on the teacher's outputs, in TypeScript, " +
    'and exports it with the same inputs and outputs. Other architectures need an external training job; the technique says so and does not run.',
  expectedEffect(analysis: ModelAnalysis): string {
    if ((analysis.opHistogram.Conv ?? 0) > 0 || (analysis.opHistogram.Softmax ?? 0) > 1) {
      return 'Needs an external training job for this architecture (Ferry trains MLP students only): typically 2-4x fewer parameters for a few points of accuracy.';
    }
    return 'For an MLP: about 2-4x fewer parameters (hidden widths halved) and a similar latency gain; outputs agree with the teacher only approximately (top-1 agreement reported).';
  },
  applicability(analysis: ModelAnalysis): { ok: true } | { ok: false; reason: string } {
    const hist = analysis.opHistogram;
    const blockers = Object.keys(hist).filter(
      (op) =>
        ![
          'MatMul',
          'Gemm',
          'Add',
          'Relu',
          'LeakyRelu',
          'Tanh',
          'Sigmoid',
          'Softmax',
          'LogSoftmax',
          'Constant',
          'Flatten',
          'Identity',
          'Dropout',
        ].includes(op),
    );
    if (blockers.length) return { ok: false, reason: externalTrainingReason(`it uses ${blockers.sort().join(', ')}`) };
    if (!(hist.MatMul ?? 0) && !(hist.Gemm ?? 0))
      return { ok: false, reason: externalTrainingReason('it has no MatMul or Gemm layer') };
    return { ok: true };
  },
  async apply(bytes: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    const started = Date.now();
    const applicable = distillMlp.applicability(ctx.analysis, ctx.target);
    if (!applicable.ok) return { applied: false, reason: applicable.reason };
    let opts: DistillOptions;
    try {
      opts = readOptions(ctx.options);
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    const teacherModel = decodeModel(bytes);
    const mlp = detectMlp(teacherModel);
    if (typeof mlp === 'string') return { applied: false, reason: externalTrainingReason(mlp) };
    const hidden = mlp.layers.slice(0, -1).map((l) => l.outDim);
    const widths = opts.hiddenDims ?? hidden.map((h) => Math.max(1, Math.round(h * (opts.widthFactor ?? 0.5))));
    if (widths.length !== hidden.length)
      return {
        applied: false,
        reason: `option hiddenDims has ${widths.length} entries; the teacher has ${hidden.length} hidden layers`,
      };
    if (widths.every((w, i) => w >= hidden[i]))
      return {
        applied: false,
        reason: `the student's hidden widths [${widths}] are not narrower than the teacher's [${hidden}]`,
      };
    const features = mlp.layers[0].inDim;
    const inputSpec = ctx.analysis.inputs.find((i) => i.name === mlp.input);
    const dim0 = inputSpec?.shape[0];
    const fixedBatch = typeof dim0 === 'number' && dim0 > 0 ? dim0 : undefined;
    const budget = opts.timeBudgetMs ?? 60_000;
    const samples = opts.samples ?? 4096;
    const seed = opts.seed ?? 1;
    const report = (f: number, d: string) => ctx.onProgress?.(Math.min(1, f), d);

    // Training and held-out inputs.
    let trainRows: Float32Array;
    let holdRows: Float32Array;
    let dataNote: string;
    try {
      const genBatch = fixedBatch ?? 256;
      const generated = (count: number, s: number) =>
        rowsOf(
          generateCalibrationData(ctx.analysis.inputs, {
            batches: Math.ceil(count / genBatch),
            batchSize: genBatch,
            seed: s,
          }).batches,
          mlp.input,
          features,
        );
      if (ctx.calibration?.length) {
        const user = rowsOf(userCalibrationData(ctx.analysis.inputs, ctx.calibration).batches, mlp.input, features);
        const userCount = user.length / features;
        const holdCount = Math.max(1, Math.min(Math.floor(userCount / 5), opts.holdoutRows ?? 1024));
        holdRows = user.slice(0, holdCount * features);
        const base = user.slice(holdCount * features);
        const baseCount = base.length / features;
        if (baseCount === 0)
          return { applied: false, reason: 'too few calibration samples to train on (need at least 2 rows)' };
        const total = Math.max(samples, baseCount);
        trainRows = new Float32Array(total * features);
        trainRows.set(base);
        // Few real rows: add jittered copies (Gaussian noise of 5% of each feature's spread).
        const rand = seededUniform(seed + 7);
        const spread = new Float32Array(features);
        for (let f = 0; f < features; f++) {
          let lo = Infinity;
          let hi = -Infinity;
          for (let r = 0; r < baseCount; r++) {
            lo = Math.min(lo, base[r * features + f]);
            hi = Math.max(hi, base[r * features + f]);
          }
          spread[f] = hi > lo ? hi - lo : 1;
        }
        for (let r = baseCount; r < total; r++) {
          const src = r % baseCount;
          for (let f = 0; f < features; f++) {
            const gauss = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
            trainRows[r * features + f] = base[src * features + f] + 0.05 * spread[f] * gauss;
          }
        }
        dataNote = `${baseCount} calibration rows${total > baseCount ? ` + ${total - baseCount} jittered copies` : ''}; ${holdCount} calibration rows held out`;
      } else {
        trainRows = generated(samples, seed + 100);
        holdRows = generated(opts.holdoutRows ?? 1024, seed + 200);
        dataNote = `${trainRows.length / features} generated rows (uniform in [-1, 1): the student learns the teacher on that box, not on real data); ${holdRows.length / features} generated rows held out`;
      }
      if (fixedBatch) {
        trainRows = trainRows.slice(0, Math.floor(trainRows.length / features / fixedBatch) * fixedBatch * features);
        holdRows = holdRows.slice(
          0,
          Math.max(fixedBatch, Math.floor(holdRows.length / features / fixedBatch) * fixedBatch) * features,
        );
      }
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }

    // Teacher logits from onnxruntime.
    report(0.02, "computing the teacher's outputs in onnxruntime");
    let targets: Float32Array;
    let teacherHold: Float32Array;
    try {
      const teacherWithLogits = mlp.logits === mlp.output ? bytes : augmentWithOutputs(bytes, [mlp.logits]);
      targets = await runRows(teacherWithLogits, mlp.input, mlp.logits, trainRows, mlp.inputRowDims, fixedBatch);
      teacherHold = await runRows(bytes, mlp.input, mlp.output, holdRows, mlp.inputRowDims, fixedBatch);
    } catch (err) {
      return { applied: false, reason: `onnxruntime could not run the teacher: ${(err as Error).message}` };
    }
    const rows = trainRows.length / features;

    // Student: init and training within what is left of the budget (keep ~15% for export and the check).
    const student =
      (opts.init ?? 'teacher-units') === 'teacher-units'
        ? studentFromTeacherUnits(mlp.layers, widths)
        : randomStudent(mlp.layers, widths, seed);
    const trainBudget = Math.max(0, budget * 0.85 - (Date.now() - started));
    const loss = opts.loss ?? 'mse';
    const outDim = mlp.layers[mlp.layers.length - 1].outDim;
    const probe = Math.min(rows, 512);
    const lossOnProbe = () =>
      distillLoss(
        loss,
        studentForward(student, trainRows.subarray(0, probe * features), probe).at(-1)!,
        targets.subarray(0, probe * outDim),
        probe,
        outDim,
        opts.temperature ?? 2,
      ).loss;
    const startLoss = lossOnProbe();
    const trained = trainStudent(student, trainRows, targets, rows, {
      epochs: opts.epochs ?? 20,
      batchSize: opts.batchSize ?? 64,
      learningRate: opts.learningRate ?? 1e-3,
      loss,
      temperature: opts.temperature ?? 2,
      seed,
      timeBudgetMs: trainBudget,
      onProgress: (f, d) => report(0.05 + 0.85 * f, d),
    });
    if (trained.epochs === 0 && trained.lossHistory.length === 0) {
      return {
        applied: false,
        reason: `the time budget (${budget} ms) ran out before one training batch: raise timeBudgetMs`,
      };
    }

    // Export through the teacher's graph and check in onnxruntime on held-out rows.
    report(0.92, 'exporting the student and checking it in onnxruntime');
    const teacherParams = parameterCount(mlp.layers);
    const studentParams = parameterCount(student);
    const note = `distill-mlp: hidden [${hidden.join(', ')}] → [${widths.join(', ')}], ${trained.epochs} epochs, loss ${loss}`;
    let studentBytes: Uint8Array;
    let agreement: Agreement;
    try {
      studentBytes = exportStudent(bytes, student, note);
      const studentHold = await runRows(studentBytes, mlp.input, mlp.output, holdRows, mlp.inputRowDims, fixedBatch);
      const holdCount = holdRows.length / features;
      const asOutputs = (data: Float32Array) => [
        { [mlp.output]: new ort.Tensor('float32', data, [holdCount, outDim]) },
      ];
      agreement = agreementOf(asOutputs(teacherHold), asOutputs(studentHold));
    } catch (err) {
      return {
        applied: false,
        reason: `the exported student did not load or run in onnxruntime: ${(err as Error).message}`,
      };
    }
    report(1, 'done');
    const endLoss = lossOnProbe();
    return {
      applied: true,
      model: studentBytes,
      notes: [
        `student MLP: hidden widths [${hidden.join(', ')}] → [${widths.join(', ')}], parameters ${teacherParams} → ${studentParams} (${(teacherParams / studentParams).toFixed(2)}x fewer), ` +
          `size ${bytes.length} → ${studentBytes.length} bytes`,
        `trained in TypeScript on ${dataNote}: ${trained.epochs} epoch(s) of Adam (batch ${opts.batchSize ?? 64}, lr ${opts.learningRate ?? 1e-3}), ${loss} on the teacher's ${mlp.logits === mlp.output ? 'outputs' : `logits ('${mlp.logits}')`}, ` +
          `init ${opts.init ?? 'teacher-units'}, seed ${seed}; loss on the first ${probe} rows ${startLoss.toPrecision(3)} → ${endLoss.toPrecision(3)} in ${(trained.elapsedMs / 1000).toFixed(1)} s` +
          (trained.stoppedByBudget ? ` (stopped by the time budget of ${budget} ms)` : ''),
        `agreement with the teacher on ${holdRows.length / features} held-out rows, in onnxruntime: ${describeAgreement(agreement)}`,
      ],
    };
  },
};
