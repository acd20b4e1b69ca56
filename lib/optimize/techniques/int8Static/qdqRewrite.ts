/**
 * The QDQ rewrite of static INT8 quantization: QuantizeLinear/DequantizeLinear pairs around the planned Conv,
 * MatMul, Gemm and Add nodes, with scales from the calibrated ranges, so that onnxruntime fuses each group into
 * its integer kernels (QLinearConv, QLinearMatMul, QGemm, QLinearAdd) when it loads the model.
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
 */
import { attr, castNode, makeNode } from '../../../onnx/builders';
import { isDefaultDomain } from '../../../onnx/graph';
import {
  addInitializers,
  type ConstantWeight,
  GraphScope,
  NameAllocator,
  removeIfUnused,
} from '../../../onnx/graphRewrite';
import type { GraphProto, NodeProto, OnnxModel, TensorProto } from '../../../onnx/model';
import { float32Tensor, TensorDataType, tensorToFloat32 } from '../../../onnx/tensor';
import type { TensorRange } from '../calibration';
import {
  activationQuantParams,
  activationTensor,
  int8Tensor,
  int16Tensor,
  int32Tensor,
  quantizeAsymmetric,
  quantizeWeightPerAxis,
  roundHalfEven,
  weightQmax,
  zeroPointTensor,
} from '../quantization';
import type { Resolved } from './options';
import { PASS_THROUGH_OPS, type Planned, type PlannedAdd } from './plan';

/** The scale and zero point of a quantized activation, with the range they came from. */
export interface QuantizedActivation {
  scale: number;
  zeroPoint: number;
  min: number;
  max: number;
  observedMin: number;
  observedMax: number;
  /** The quantized tensor it shares them with, through value-preserving ops. */
  inheritedFrom?: string;
}

interface ActivationParams {
  scale: number;
  zeroPoint: number;
  scaleName: string;
  zpName: string;
}

/** Rewrites the main graph in place: first `tensorsToCalibrate()`, then `rewrite()` with their ranges. */
export class QdqRewriter {
  readonly activations: Record<string, QuantizedActivation> = {};
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
    model: OnnxModel,
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

  private params = new Map<string, ActivationParams>();

  private paramsFor(name: string, ranges: Map<string, TensorRange>): ActivationParams {
    const hit = this.params.get(name);
    if (hit) return hit;
    const source = this.inheritedSource(name);
    let out: ActivationParams;
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
      addInitializers(
        this.graph,
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
      weightQmax(this.opts.reduceRange),
    );
    const qName = this.names.fresh(`${p.weight.name}_quantized`);
    const sName = this.names.fresh(`${p.weight.name}_scale`);
    const dq = this.names.fresh(`${p.weight.name}_dequantized`);
    const scaleDims = this.perChannel ? [scales.length] : [];
    addInitializers(this.graph, int8Tensor(qName, dims, q), float32Tensor(sName, scaleDims, scales));
    // Zeros, but spelled out: onnxruntime 1.30 only fuses DQ → Gemm into QGemm when the weight's zero point is given.
    // They are the same for every weight with as many channels, so one initializer serves them all.
    const zpKey = this.perChannel ? String(scales.length) : '';
    let zpName = this.weightZeroPoints.get(zpKey);
    if (!zpName) {
      zpName = this.names.fresh(this.perChannel ? `weight_zero_point_${scales.length}` : 'weight_zero_point');
      addInitializers(this.graph, int8Tensor(zpName, scaleDims, new Int8Array(scales.length)));
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
      addInitializers(this.graph, int16Tensor(narrow, [n], Int16Array.from(q)));
      header.push(castNode(narrow, qName, TensorDataType.INT32, this.names.fresh(`${base}_quantized_Cast`)));
    } else {
      addInitializers(this.graph, int32Tensor(qName, [n], q));
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
      addInitializers(this.graph, float32Tensor(sName, [], [scales[0]]));
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
    const q = quantizeAsymmetric(values, qp, type);
    const qName = this.names.fresh(`${c.name}_quantized`);
    const sName = this.names.fresh(`${c.name}_scale`);
    const zName = this.names.fresh(`${c.name}_zero_point`);
    const dq = this.names.fresh(`${c.name}_dequantized`);
    addInitializers(
      this.graph,
      activationTensor(qName, (c.tensor.dims ?? []).map(Number), type, q),
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
