/**
 * INT8 static quantization in QDQ form: QuantizeLinear/DequantizeLinear pairs around Conv, MatMul and Gemm,
 * with activation ranges measured on calibration data, so that onnxruntime fuses each group into its integer
 * kernels (QLinearConv, QLinearMatMul, QGemm) when it loads the model.
 *
 * What the rewrite produces, per quantized node:
 * - weight: int8, symmetric (zero point 0, −127..127, or −63..63 with `reduceRange`), one scale per output
 *   channel (Conv: axis 0; MatMul: the last axis of B; Gemm: axis 0 when transB = 1, else 1), stored once as an
 *   initializer and read through a DequantizeLinear; a weight shared by several nodes is quantized once.
 *   Weights in Constant nodes are read the same way as initializers.
 * - activation input: QuantizeLinear → DequantizeLinear with the calibrated scale and zero point (uint8 by
 *   default, or int8; asymmetric). A tensor read by several quantized nodes gets one pair.
 * - bias (Conv's B, Gemm's C): int32 with scale = input scale × weight scale, as the integer kernels want it. To keep
 *   the file small, per-channel bias scales are a Mul of the two scale initializers (not n more floats), bias values
 *   that fit 16 bits are stored as int16 behind a Cast to int32, and weights with as many channels share one
 *   all-zero zero-point initializer; onnxruntime folds the Mul and Cast into constants before its QDQ fusion.
 * - output: Conv and MatMul outputs are quantized too (onnxruntime's fusion needs a QuantizeLinear after them);
 *   a Relu that is the only reader of the output is folded into that QuantizeLinear (its range starts at 0, so
 *   the zero point is the type's minimum and the clamp is the Relu). Gemm keeps a float32 output unless a Relu
 *   folds in: onnxruntime's QGemm then writes float32 directly, which is both faster and more accurate.
 * - `MatMul` on a 2-D input followed by `Add` of a constant [N] bias becomes one Gemm (QGemm with an int32
 *   bias): onnxruntime otherwise fuses MatMul+Add into a float Gemm first and the int8 kernel is lost.
 * - Tensors that only pass values through (Flatten, Reshape, Transpose, MaxPool, ...) between a quantized output
 *   and a quantized input reuse that output's scale and zero point, so onnxruntime moves them into the int8 domain.
 *
 * Opset: QuantizeLinear needs opset 10 and per-axis scales 13; an older model is upgraded (lib/onnx/opsetUpgrade)
 * when all its ops allow it. If per-axis is impossible but opset 10 is there, weights fall back to one scale per
 * tensor. Only the main graph is quantized; If/Loop/Scan bodies stay float32.
 * The result is loaded and run in onnxruntime next to the original before it is returned.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelAnalysis } from '../../onnx/analyze';
import { attr, makeNode } from '../../onnx/builders';
import { findAttribute, forEachGraph, isDefaultDomain, subgraphsOf } from '../../onnx/graph';
import {
  type ConstantWeight,
  countUses,
  defaultOpsetVersion,
  GraphScope,
  NameAllocator,
  removeIfUnused,
} from '../../onnx/graphRewrite';
import {
  decodeModel,
  encodeModel,
  type GraphProto,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
} from '../../onnx/model';
import { upgradeDefaultOpset } from '../../onnx/opsetUpgrade';
import { inferShapes } from '../../onnx/shapeInference';
import { elementCount, float32Tensor, isExternal, TensorDataType, tensorToFloat32 } from '../../onnx/tensor';
import type { Feeds, OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../technique';
import {
  CALIBRATION_METHODS,
  type CalibrationData,
  type CalibrationMethod,
  calibrateRanges,
  type GeneratedCalibrationOptions,
  generateCalibrationData,
  type TensorRange,
  userCalibrationData,
} from './calibration';
import { type Agreement, describeAgreement, measureAgreement, toOrtTensors } from './modelAgreement';

export const INT8_STATIC_ID = 'int8-static';

export type QuantizableOp = 'Conv' | 'MatMul' | 'Gemm';

export interface Int8StaticOptions {
  /** How activation ranges are derived from the calibration data (default 'minmax'). */
  calibrationMethod?: CalibrationMethod;
  /** For 'percentile': the share of values kept, in percent (default 99.99). */
  percentile?: number;
  /** Activation type (default 'uint8'); weights are always int8. */
  activationType?: 'uint8' | 'int8';
  /** One weight scale per output channel (default true; needs opset 13). */
  perChannel?: boolean;
  /** 7-bit weights, for CPUs without VNNI whose u8×s8 instructions can saturate (default false). */
  reduceRange?: boolean;
  opTypes?: QuantizableOp[];
  /** Node names to keep in float32. */
  excludeNodes?: string[];
  /** Fold a Relu that alone reads a quantized output into its QuantizeLinear (default true). */
  foldRelu?: boolean;
  /** Rewrite 2-D MatMul + constant-bias Add as Gemm (default true). */
  matMulAddToGemm?: boolean;
  /**
   * Quantize Add nodes fed by a quantized tensor (bias and residual Adds after a quantized MatMul or Conv) so
   * that onnxruntime runs them as QLinearAdd and the tensors stay 8-bit between integer kernels (default true).
   */
  quantizeAdd?: boolean;
  /** Shape of generated calibration data when the caller supplies none. */
  generated?: GeneratedCalibrationOptions;
}

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
  skipped: Array<{ node: string; opType: string; reason: string }>;
  opset: { from: number; to: number; changes: string[] };
  calibration: { method: CalibrationMethod; source: 'user' | 'generated'; description: string; tensors: number };
  /** Scale and zero point of every quantized activation, with the range they came from. */
  activations: Record<
    string,
    {
      scale: number;
      zeroPoint: number;
      min: number;
      max: number;
      observedMin: number;
      observedMax: number;
      inheritedFrom?: string;
    }
  >;
  /** Bias values that did not fit int32 at scale (input scale × weight scale) and were clamped. */
  clampedBiases: string[];
  notes: string[];
}

export class NotQuantizable extends Error {}

interface Planned {
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
interface PlannedAdd {
  node: NodeProto;
  label: string;
  inputs: Array<{ name: string; constant?: ConstantWeight }>;
  output: string;
  relu?: NodeProto;
  /** Set by the rewrite. */
  nameInModel?: string;
}

const PASS_THROUGH_OPS = new Set([
  'Flatten',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'MaxPool',
  'GlobalMaxPool',
]);

function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = findAttribute(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

function floatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = findAttribute(node, name);
  return a?.f !== undefined ? a.f : fallback;
}

/** Rounds half to even (numpy's rint), so ties land where onnxruntime's own quantizer puts them. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scale and zero point mapping [min(0, lo), max(0, hi)] onto the full range of the activation type. */
export function activationQuantParams(
  range: { min: number; max: number },
  type: 'uint8' | 'int8',
): { scale: number; zeroPoint: number } {
  const [qmin, qmax] = type === 'uint8' ? [0, 255] : [-128, 127];
  const lo = Math.min(0, range.min);
  const hi = Math.max(0, range.max);
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: type === 'uint8' ? 0 : 0 };
  const zp = roundHalfEven(qmin - lo / scale);
  return { scale, zeroPoint: Math.min(qmax, Math.max(qmin, zp)) };
}

/**
 * Symmetric int8 quantization of a weight along `axis` (or per tensor when axis is undefined):
 * scale = max |w| / qmax per channel, zero point 0.
 */
export function quantizeWeightPerAxis(
  values: Float32Array,
  dims: number[],
  axis: number | undefined,
  qmax = 127,
): { q: Int8Array; scales: Float32Array } {
  const channels = axis === undefined ? 1 : dims[axis];
  const inner = axis === undefined ? values.length : elementCount(dims.slice(axis + 1));
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const absMax = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i);
    const v = Math.abs(values[i]);
    if (v > absMax[c]) absMax[c] = v;
  }
  const scales = Float32Array.from(absMax, (m) => (m > 0 && Number.isFinite(m) ? m / qmax : 1));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const r = roundHalfEven(values[i] / scales[channelOf(i)]);
    q[i] = r > qmax ? qmax : Math.max(r, -qmax);
  }
  return { q, scales };
}

function int8Tensor(name: string, dims: number[], values: Int8Array): TensorProto {
  return {
    name,
    dims,
    data_type: TensorDataType.INT8,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

function int16Tensor(name: string, dims: number[], values: Int16Array): TensorProto {
  return {
    name,
    dims,
    data_type: TensorDataType.INT16,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

function int32Tensor(name: string, dims: number[], values: Int32Array): TensorProto {
  return {
    name,
    dims,
    data_type: TensorDataType.INT32,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

function zeroPointTensor(name: string, type: 'uint8' | 'int8', zp: number): TensorProto {
  const raw = type === 'uint8' ? Uint8Array.of(zp) : new Uint8Array(Int8Array.of(zp).buffer);
  return { name, dims: [], data_type: type === 'uint8' ? TensorDataType.UINT8 : TensorDataType.INT8, raw_data: raw };
}

function resolveOptions(
  o: Int8StaticOptions,
): Required<Omit<Int8StaticOptions, 'generated'>> & { generated: GeneratedCalibrationOptions } {
  return {
    calibrationMethod: o.calibrationMethod ?? 'minmax',
    percentile: o.percentile ?? 99.99,
    activationType: o.activationType ?? 'uint8',
    perChannel: o.perChannel ?? true,
    reduceRange: o.reduceRange ?? false,
    opTypes: o.opTypes ?? ['Conv', 'MatMul', 'Gemm'],
    excludeNodes: o.excludeNodes ?? [],
    foldRelu: o.foldRelu ?? true,
    matMulAddToGemm: o.matMulAddToGemm ?? true,
    quantizeAdd: o.quantizeAdd ?? true,
    generated: o.generated ?? {},
  };
}

type Resolved = ReturnType<typeof resolveOptions>;

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
): { planned: Planned[]; adds: PlannedAdd[]; skipped: Int8StaticReport['skipped'] } {
  const graph = model.graph ?? {};
  const scope = new GraphScope(graph, undefined, Number(model.ir_version ?? 0));
  const shapes = inferShapes(graph);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
  const planned: Planned[] = [];
  const skipped: Int8StaticReport['skipped'] = [];
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
    if (!isDefaultDomain(node.domain) || !['Conv', 'MatMul', 'Gemm'].includes(op) || !opts.opTypes.includes(op))
      continue;
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
      let bias: Planned['bias'];
      if (node.input?.[2]) {
        const b = biasVector(scope, node.input[2], m, 1);
        if (typeof b === 'string') {
          skip(b);
          continue;
        }
        bias = b;
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
      if (intAttr(node, 'transA', 0) !== 0) {
        skip('transA = 1 (the int8 Gemm kernel reads A untransposed)');
        continue;
      }
      const weight = weightOf(node.input?.[1], (r) => r === 2, 'Gemm weights have 2');
      if (typeof weight === 'string') {
        skip(weight);
        continue;
      }
      const transB = intAttr(node, 'transB', 0) === 1;
      const n = Number(weight.tensor.dims![transB ? 0 : 1]);
      const alpha = floatAttr(node, 'alpha', 1);
      const beta = floatAttr(node, 'beta', 1);
      if (!(Number.isFinite(alpha) && alpha !== 0)) {
        skip(`alpha is ${alpha}`);
        continue;
      }
      let bias: Planned['bias'];
      if (node.input?.[2] && beta !== 0) {
        const b = biasVector(scope, node.input[2], n, beta);
        if (typeof b === 'string') {
          skip(b);
          continue;
        }
        bias = b;
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

class QdqRewriter {
  readonly activations: Int8StaticReport['activations'] = {};
  readonly clampedBiases: string[] = [];
  private readonly names: NameAllocator;
  private readonly graph: GraphProto;
  private readonly scope: GraphScope;
  /** Tensors produced by a DequantizeLinear this rewrite adds in place of the original producer's output. */
  private readonly quantizedOutputs = new Set<string>();
  private readonly constantCache = new Map<TensorProto, string>();
  private readonly weightCache = new Map<TensorProto, { dq: string; scales: Float32Array; scaleName: string }>();
  /** Weight zero points (all zeros) by length ('' for per tensor): one initializer serves every weight of that length. */
  private readonly weightZeroPoints = new Map<string, string>();
  /** Per-axis bias scales (input scale × weight scales) by their two factors. */
  private readonly biasScales = new Map<string, string>();
  private readonly activationDq = new Map<string, string>();

  constructor(
    private readonly model: OnnxModel,
    private readonly planned: Planned[],
    private readonly adds: PlannedAdd[],
    private readonly opts: Resolved,
    private readonly perChannel: boolean,
  ) {
    this.names = new NameAllocator(model);
    this.graph = model.graph ?? {};
    this.scope = new GraphScope(this.graph, undefined, Number(model.ir_version ?? 0));
    for (const p of planned) if (p.quantizeOutput) this.quantizedOutputs.add(this.outputTensor(p));
    for (const a of adds) this.quantizedOutputs.add(this.outputTensor(a));
  }

  outputTensor(p: Planned | PlannedAdd): string {
    return p.relu ? (p.relu.output?.[0] ?? '') : p.output;
  }

  /** The quantized output `name` inherits its scale from, through value-preserving ops (Flatten, Reshape, ...). */
  inheritedSource(name: string): string | undefined {
    const seen = new Set<string>();
    let current = name;
    while (!seen.has(current)) {
      seen.add(current);
      const producer = this.scope.producerOf(current);
      if (!producer || !isDefaultDomain(producer.domain) || !PASS_THROUGH_OPS.has(producer.op_type ?? ''))
        return undefined;
      const source = producer.input?.[0] ?? '';
      if (this.quantizedOutputs.has(source)) return source;
      current = source;
    }
    return undefined;
  }

  /** Tensors whose ranges calibration must measure. */
  tensorsToCalibrate(): string[] {
    const names = new Set<string>();
    const needs = (x: string) => !this.quantizedOutputs.has(x) && !this.inheritedSource(x);
    for (const p of this.planned) {
      if (needs(p.input)) names.add(p.input);
      if (p.quantizeOutput) names.add(this.outputTensor(p));
    }
    for (const a of this.adds) {
      for (const i of a.inputs) if (!i.constant && needs(i.name)) names.add(i.name);
      names.add(this.outputTensor(a));
    }
    return [...names];
  }

  private params = new Map<string, { scale: number; zeroPoint: number; scaleName: string; zpName: string }>();

  private paramsFor(
    name: string,
    ranges: Map<string, TensorRange>,
  ): { scale: number; zeroPoint: number; scaleName: string; zpName: string } {
    const hit = this.params.get(name);
    if (hit) return hit;
    const source = this.inheritedSource(name);
    let out;
    if (source) {
      const p = this.paramsFor(source, ranges);
      out = p;
      const r = ranges.get(source)!;
      this.activations[name] = {
        scale: p.scale,
        zeroPoint: p.zeroPoint,
        min: r.min,
        max: r.max,
        observedMin: r.observedMin,
        observedMax: r.observedMax,
        inheritedFrom: source,
      };
    } else {
      const r = ranges.get(name);
      if (!r) throw new Error(`no calibrated range for '${name}'`);
      const qp = activationQuantParams(r, this.opts.activationType);
      const scaleName = this.names.fresh(`${name}_scale`);
      const zpName = this.names.fresh(`${name}_zero_point`);
      (this.graph.initializer ??= []).push(
        float32Tensor(scaleName, [], [qp.scale]),
        zeroPointTensor(zpName, this.opts.activationType, qp.zeroPoint),
      );
      out = { ...qp, scaleName, zpName };
      this.activations[name] = {
        ...qp,
        min: r.min,
        max: r.max,
        observedMin: r.observedMin,
        observedMax: r.observedMax,
      };
    }
    this.params.set(name, out);
    return out;
  }

  private quantizedWeight(p: Planned, header: NodeProto[]): { dq: string; scales: Float32Array; scaleName: string } {
    const key = p.weight.tensor;
    const cached = this.weightCache.get(key);
    if (cached && p.weightScale === 1) return cached;
    const dims = (key.dims ?? []).map(Number);
    let values = tensorToFloat32(key);
    if (p.weightScale !== 1) values = Float32Array.from(values, (v) => v * p.weightScale);
    const { q, scales } = quantizeWeightPerAxis(
      values,
      dims,
      this.perChannel ? p.axis : undefined,
      this.opts.reduceRange ? 63 : 127,
    );
    const qName = this.names.fresh(`${p.weight.name}_quantized`);
    const sName = this.names.fresh(`${p.weight.name}_scale`);
    const dq = this.names.fresh(`${p.weight.name}_dequantized`);
    const scaleDims = this.perChannel ? [scales.length] : [];
    (this.graph.initializer ??= []).push(int8Tensor(qName, dims, q), float32Tensor(sName, scaleDims, scales));
    // Zeros, but spelled out: onnxruntime 1.30 only fuses DQ → Gemm into QGemm when the weight's zero point is given.
    // They are the same for every weight with as many channels, so one initializer serves them all.
    const zpKey = this.perChannel ? String(scales.length) : '';
    let zpName = this.weightZeroPoints.get(zpKey);
    if (!zpName) {
      zpName = this.names.fresh(this.perChannel ? `weight_zero_point_${scales.length}` : 'weight_zero_point');
      this.graph.initializer.push(int8Tensor(zpName, scaleDims, new Int8Array(scales.length)));
      this.weightZeroPoints.set(zpKey, zpName);
    }
    header.push(
      makeNode('DequantizeLinear', [qName, sName, zpName], [dq], {
        name: this.names.fresh(`${p.weight.name}_DequantizeLinear`),
        attributes: this.perChannel ? [attr.int('axis', p.axis)] : [],
      }),
    );
    const out = { dq, scales, scaleName: sName };
    if (p.weightScale === 1) this.weightCache.set(key, out);
    return out;
  }

  private quantizedBias(
    p: Planned,
    input: { scale: number; scaleName: string },
    weight: { scales: Float32Array; scaleName: string },
    header: NodeProto[],
  ): string {
    const bias = p.bias!;
    const inputScale = input.scale;
    const weightScales = weight.scales;
    const n = bias.values.length;
    const scales = Float32Array.from({ length: n }, (_, j) =>
      Math.fround(inputScale * weightScales[weightScales.length === 1 ? 0 : j]),
    );
    const q = new Int32Array(n);
    let clamped = false;
    for (let j = 0; j < n; j++) {
      const r = roundHalfEven(bias.values[j] / scales[j]);
      if (r > 2147483647 || r < -2147483647) clamped = true;
      q[j] = Math.max(-2147483647, Math.min(2147483647, r));
    }
    if (clamped) this.clampedBiases.push(bias.source.name);
    const base = bias.source.name;
    const qName = this.names.fresh(`${base}_quantized`);
    const dq = this.names.fresh(`${base}_dequantized`);
    // Per-tensor weights (opset 10-12) give one bias scale, and DequantizeLinear has no axis before opset 13.
    const perAxis = this.perChannel && weightScales.length > 1;
    if (q.every((v) => v >= -32768 && v <= 32767)) {
      // Values that fit 16 bits are stored in 16 bits and widened by a Cast (lossless), which onnxruntime folds into
      // the int32 constant its integer kernels read when it loads the model.
      const narrow = this.names.fresh(`${base}_quantized_int16`);
      (this.graph.initializer ??= []).push(int16Tensor(narrow, [n], Int16Array.from(q)));
      header.push(
        makeNode('Cast', [narrow], [qName], {
          name: this.names.fresh(`${base}_quantized_Cast`),
          attributes: [attr.int('to', TensorDataType.INT32)],
        }),
      );
    } else {
      (this.graph.initializer ??= []).push(int32Tensor(qName, [n], q));
    }
    let sName: string;
    if (perAxis) {
      // Input scale × weight scales, computed in the graph from the two initializers already there rather than stored
      // as n more floats: onnxruntime folds the Mul into a constant when it loads the model (before its QDQ fusion),
      // and float32 × float32 there rounds exactly as Math.fround(inputScale * weightScale) does here.
      const key = `${input.scaleName}\u0000${weight.scaleName}`;
      sName = this.biasScales.get(key) ?? '';
      if (!sName) {
        sName = this.names.fresh(`${base}_quantized_scale`);
        header.push(
          makeNode('Mul', [input.scaleName, weight.scaleName], [sName], {
            name: this.names.fresh(`${base}_quantized_scale_Mul`),
          }),
        );
        this.biasScales.set(key, sName);
      }
    } else {
      sName = this.names.fresh(`${base}_quantized_scale`);
      this.graph.initializer.push(float32Tensor(sName, [], [scales[0]]));
    }
    header.push(
      makeNode('DequantizeLinear', [qName, sName], [dq], {
        name: this.names.fresh(`${base}_DequantizeLinear`),
        attributes: perAxis ? [attr.int('axis', 0)] : [],
      }),
    );
    return dq;
  }

  private qdqPair(
    tensor: string,
    input: string,
    output: string,
    p: { scaleName: string; zpName: string },
  ): NodeProto[] {
    const q = this.names.fresh(`${tensor}_quantized`);
    return [
      makeNode('QuantizeLinear', [input, p.scaleName, p.zpName], [q], {
        name: this.names.fresh(`${tensor}_QuantizeLinear`),
      }),
      makeNode('DequantizeLinear', [q, p.scaleName, p.zpName], [output], {
        name: this.names.fresh(`${tensor}_DequantizeLinear`),
      }),
    ];
  }

  /** A float constant read by a quantized Add, as 8-bit values (its own min/max range) behind a DequantizeLinear. */
  private quantizedConstant(c: ConstantWeight, header: NodeProto[]): string {
    const hit = this.constantCache.get(c.tensor);
    if (hit) return hit;
    const values = tensorToFloat32(c.tensor);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const type = this.opts.activationType;
    const qp = activationQuantParams({ min: lo, max: hi }, type);
    const [qmin, qmax] = type === 'uint8' ? [0, 255] : [-128, 127];
    const q = Int32Array.from(values, (v) =>
      Math.min(qmax, Math.max(qmin, roundHalfEven(v / qp.scale) + qp.zeroPoint)),
    );
    const raw = type === 'uint8' ? Uint8Array.from(q) : new Uint8Array(Int8Array.from(q).buffer);
    const qName = this.names.fresh(`${c.name}_quantized`);
    const sName = this.names.fresh(`${c.name}_scale`);
    const zName = this.names.fresh(`${c.name}_zero_point`);
    const dq = this.names.fresh(`${c.name}_dequantized`);
    (this.graph.initializer ??= []).push(
      {
        name: qName,
        dims: (c.tensor.dims ?? []).map(Number),
        data_type: type === 'uint8' ? TensorDataType.UINT8 : TensorDataType.INT8,
        raw_data: raw,
      },
      float32Tensor(sName, [], [qp.scale]),
      zeroPointTensor(zName, type, qp.zeroPoint),
    );
    header.push(
      makeNode('DequantizeLinear', [qName, sName, zName], [dq], {
        name: this.names.fresh(`${c.name}_DequantizeLinear`),
      }),
    );
    this.constantCache.set(c.tensor, dq);
    return dq;
  }

  /** The dequantized form of activation `name`: itself when a rewritten producer already emits it, else a shared Q/DQ pair. */
  private activationInput(
    name: string,
    ranges: Map<string, TensorRange>,
    body: NodeProto[],
  ): { name: string; scale: number; scaleName: string } {
    const params = this.paramsFor(name, ranges);
    if (this.quantizedOutputs.has(name)) return { name, scale: params.scale, scaleName: params.scaleName };
    const known = this.activationDq.get(name);
    if (known) return { name: known, scale: params.scale, scaleName: params.scaleName };
    const dq = this.names.fresh(`${name}_dequantized`);
    body.push(...this.qdqPair(name, name, dq, params));
    this.activationDq.set(name, dq);
    return { name: dq, scale: params.scale, scaleName: params.scaleName };
  }

  /** Renames the node's output (or keeps it when a Relu folds in) and appends the output Q/DQ pair. */
  private quantizeOutput(
    node: NodeProto,
    output: string,
    relu: NodeProto | undefined,
    finalOut: string,
    ranges: Map<string, TensorRange>,
    body: NodeProto[],
  ): void {
    const opOut = relu ? output : this.names.fresh(`${output}_prequant`);
    node.output = [opOut, ...(node.output ?? []).slice(1)];
    body.push(node, ...this.qdqPair(finalOut, opOut, finalOut, this.paramsFor(finalOut, ranges)));
  }

  rewrite(ranges: Map<string, TensorRange>): void {
    const graph = this.graph;
    const byNode = new Map(this.planned.map((p) => [p.node, p]));
    const addByNode = new Map(this.adds.map((a) => [a.node, a]));
    const dropped = new Set<NodeProto>();
    for (const p of this.planned) {
      if (p.relu) dropped.add(p.relu);
      if (p.add) dropped.add(p.add);
    }
    for (const a of this.adds) if (a.relu) dropped.add(a.relu);
    const header: NodeProto[] = [];
    const body: NodeProto[] = [];
    for (const node of graph.node ?? []) {
      if (dropped.has(node)) continue;
      const add = addByNode.get(node);
      if (add) {
        node.input = add.inputs.map((i) =>
          i.constant ? this.quantizedConstant(i.constant, header) : this.activationInput(i.name, ranges, body).name,
        );
        if (!node.name) node.name = this.names.fresh(add.label);
        add.nameInModel = node.name;
        this.quantizeOutput(node, add.output, add.relu, this.outputTensor(add), ranges, body);
        continue;
      }
      const p = byNode.get(node);
      if (!p) {
        body.push(node);
        continue;
      }
      // Activation input.
      const activation = this.activationInput(p.input, ranges, body);
      const x = activation.name;
      const w = this.quantizedWeight(p, header);
      const b = p.bias ? this.quantizedBias(p, activation, w, header) : undefined;
      let op: NodeProto;
      if (p.opType === 'MatMul' && p.quantizedAs === 'Gemm') {
        op = makeNode('Gemm', [x, w.dq, ...(b ? [b] : [])], [p.output], {
          name: node.name || this.names.fresh(p.label),
        });
      } else {
        op = node;
        op.input = [x, w.dq, ...(b ? [b] : [])];
        op.output = [p.output, ...(op.output ?? []).slice(1)];
        if (!op.name) op.name = this.names.fresh(p.label);
        if (p.opType === 'Gemm')
          op.attribute = (op.attribute ?? []).filter((a) => a.name !== 'alpha' && a.name !== 'beta');
      }
      p.nameInModel = op.name;
      if (p.quantizeOutput) this.quantizeOutput(op, p.output, p.relu, this.outputTensor(p), ranges, body);
      else body.push(op);
    }
    graph.node = [...header, ...body];
    // Float weights and biases nobody reads any more go; value_info of vanished values too.
    for (const p of this.planned) {
      removeIfUnused(p.weight);
      if (p.bias) removeIfUnused(p.bias.source);
    }
    for (const a of this.adds) for (const i of a.inputs) if (i.constant) removeIfUnused(i.constant);
    const defined = new Set<string>();
    for (const v of graph.input ?? []) if (v.name) defined.add(v.name);
    for (const t of graph.initializer ?? []) if (t.name) defined.add(t.name);
    for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) defined.add(o);
    graph.value_info = (graph.value_info ?? []).filter((v) => defined.has(v.name ?? ''));
  }
}

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
          if (isDefaultDomain(n.domain) && ['Conv', 'MatMul', 'Gemm'].includes(n.op_type ?? '')) count++;
      });
    }
  }
  return count;
}

function readOptions(raw: Record<string, unknown> | undefined): Int8StaticOptions {
  const o = raw ?? {};
  const out: Int8StaticOptions = {};
  if (o.calibrationMethod !== undefined) {
    if (!CALIBRATION_METHODS.includes(o.calibrationMethod as CalibrationMethod)) {
      throw new Error(
        `option calibrationMethod must be one of ${CALIBRATION_METHODS.join(', ')}, got ${JSON.stringify(o.calibrationMethod)}`,
      );
    }
    out.calibrationMethod = o.calibrationMethod as CalibrationMethod;
  }
  if (o.percentile !== undefined) {
    if (typeof o.percentile !== 'number' || !(o.percentile > 50 && o.percentile <= 100))
      throw new Error('option percentile must be a number in (50, 100]');
    out.percentile = o.percentile;
  }
  if (o.activationType !== undefined) {
    if (o.activationType !== 'uint8' && o.activationType !== 'int8')
      throw new Error("option activationType must be 'uint8' or 'int8'");
    out.activationType = o.activationType;
  }
  for (const k of ['perChannel', 'reduceRange', 'foldRelu', 'matMulAddToGemm', 'quantizeAdd'] as const) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'boolean') throw new Error(`option ${k} must be true or false`);
    out[k] = o[k] as boolean;
  }
  if (o.opTypes !== undefined) {
    if (!Array.isArray(o.opTypes) || !o.opTypes.every((t) => t === 'Conv' || t === 'MatMul' || t === 'Gemm'))
      throw new Error('option opTypes must list Conv, MatMul and/or Gemm');
    out.opTypes = o.opTypes as QuantizableOp[];
  }
  if (o.excludeNodes !== undefined) {
    if (!Array.isArray(o.excludeNodes) || !o.excludeNodes.every((t) => typeof t === 'string'))
      throw new Error('option excludeNodes must be a list of node names');
    out.excludeNodes = o.excludeNodes as string[];
  }
  if (o.generated !== undefined) out.generated = o.generated as GeneratedCalibrationOptions;
  return out;
}

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
