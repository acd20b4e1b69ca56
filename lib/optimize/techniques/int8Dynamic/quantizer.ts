/**
 * INT8 dynamic quantization of MatMul and Gemm weights, for CPU targets.
 *
 * Each constant weight B (an initializer or a Constant node's tensor) is quantized once to int8, symmetric,
 * one scale per output channel (per column of B as MatMul reads it), and the node becomes onnxruntime's
 * `com.microsoft` DynamicQuantizeMatMul: the kernel quantizes the activations to uint8 at run time (one
 * scale per call) and runs an integer GEMM against the pre-packed int8 weights, then rescales to float32.
 *
 * - MatMul: B is [K, N]; a following `Add` of a constant [N] bias is folded into the kernel's bias input.
 * - Gemm: transA becomes a Transpose of A, transB is applied to the weight offline, alpha is folded into the
 *   scales, and beta·C is kept: as the kernel's bias when C broadcasts as a row, else as an Add after it.
 * - A weight read by several nodes is quantized once and the nodes share it.
 * - B computed at run time (attention scores, ...), weights below `minElements`, non-2-D or non-float32 B,
 *   weights in external files: left as they are and reported.
 * Graph inputs and outputs keep their names, types and shapes.
 */
import { attr, makeNode } from '../../../onnx/builders';
import { floatAttribute, intAttribute, isDefaultDomain, subgraphsOf } from '../../../onnx/graph';
import {
  addInitializers,
  type ConstantWeight,
  countUses,
  ensureOpsetImport,
  GraphScope,
  NameAllocator,
  removeIfUnused,
} from '../../../onnx/graphRewrite';
import {
  decodeModel,
  encodeModel,
  type GraphProto,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
} from '../../../onnx/model';
import {
  elementCount,
  float32Tensor,
  isExternal,
  TensorDataType,
  tensorByteSize,
  tensorToFloat32,
} from '../../../onnx/tensor';
import { int8Tensor, quantizeWeightSymmetric } from '../quantization';
import { type Int8DynamicOptions, resolveOptions } from './options';

export const MICROSOFT_DOMAIN = 'com.microsoft';

export interface QuantizedNodeReport {
  node: string;
  opType: 'MatMul' | 'Gemm';
  weight: string;
  /** Weight shape as the kernel reads it: [K, N]. */
  shape: [number, number];
  /** The constant bias folded into the kernel (a following Add, or Gemm's C). */
  bias?: string;
}

export interface SkippedNodeReport {
  node: string;
  opType: string;
  reason: string;
}

export interface Int8DynamicReport {
  quantized: QuantizedNodeReport[];
  skipped: SkippedNodeReport[];
  /** Weights read by more than one quantized node: quantized once, shared. */
  sharedWeights: Array<{ weight: string; nodes: string[] }>;
  /** Bytes of the float32 weights that were quantized, and of what replaced them (int8 values + scales). */
  floatWeightBytes: number;
  quantizedWeightBytes: number;
}

interface SharedActivation {
  quantized: string;
  scale: string;
  zeroPoint: string;
  /** The first node reading it: DynamicQuantizeLinear goes right before it. */
  first: NodeProto;
}

/** The rewrite of one node: nodes replacing it at its position, and an Add whose position a fused node takes. */
interface NodeRewrite {
  replacement: NodeProto[];
  /** When a MatMul's bias Add is folded in: the Add node, which the fused node replaces (the MatMul's slot empties). */
  fusedAdd?: NodeProto;
}

class DynamicQuantizer {
  readonly report: Int8DynamicReport = {
    quantized: [],
    skipped: [],
    sharedWeights: [],
    floatWeightBytes: 0,
    quantizedWeightBytes: 0,
  };
  private readonly names: NameAllocator;
  private readonly irVersion: number;
  /** Quantized tensors per source weight, keyed by layout ('kn' or 'nk') and alpha. */
  private readonly cache = new Map<TensorProto, Map<string, { values: string; scales: string }>>();
  private readonly usedWeights = new Map<TensorProto, { weight: ConstantWeight; nodes: string[] }>();
  /** Activations of the graph being rewritten that several quantized nodes read: quantized once. */
  private sharedActivations = new Map<string, SharedActivation>();

  constructor(
    private readonly model: OnnxModel,
    private readonly opts: Required<Int8DynamicOptions>,
    private readonly onWeight?: (name: string) => void,
  ) {
    this.names = new NameAllocator(model);
    this.irVersion = Number(model.ir_version ?? 0);
  }

  run(): void {
    if (this.model.graph) this.rewriteGraph(this.model.graph, undefined);
    for (const { weight, nodes } of this.usedWeights.values()) {
      if (nodes.length > 1) this.report.sharedWeights.push({ weight: weight.name, nodes });
      if (removeIfUnused(weight)) this.report.floatWeightBytes += tensorByteSize(weight.tensor);
    }
    if (this.report.quantized.length > 0) ensureOpsetImport(this.model, MICROSOFT_DOMAIN, 1);
  }

  private rewriteGraph(graph: GraphProto, parent: GraphScope | undefined): void {
    const scope = new GraphScope(graph, parent, this.irVersion);
    const rewrites = new Map<NodeProto, NodeRewrite>();
    const fusedAdds = new Map<NodeProto, NodeProto[]>();
    const emptied = new Set<NodeProto>();
    const shared = this.findSharedActivations(graph, scope);
    for (const node of graph.node ?? []) {
      for (const sub of subgraphsOf(node)) this.rewriteGraph(sub.graph, scope);
      this.sharedActivations = shared;
      const op = node.op_type ?? '';
      if (!isDefaultDomain(node.domain) || (op !== 'MatMul' && op !== 'Gemm')) continue;
      const label = node.name || node.output?.[0] || op;
      if (!this.opts.opTypes.includes(op)) continue;
      if (this.opts.excludeNodes.includes(node.name ?? '')) {
        this.report.skipped.push({ node: label, opType: op, reason: 'excluded by the excludeNodes option' });
        continue;
      }
      const rewrite =
        op === 'MatMul'
          ? this.rewriteMatMul(node, graph, scope, label, fusedAdds)
          : this.rewriteGemm(node, scope, label);
      if (typeof rewrite === 'string') {
        this.report.skipped.push({ node: label, opType: op, reason: rewrite });
        continue;
      }
      if (rewrite.fusedAdd) {
        fusedAdds.set(rewrite.fusedAdd, rewrite.replacement);
        emptied.add(node);
      } else {
        rewrites.set(node, rewrite);
      }
    }
    if (rewrites.size === 0 && emptied.size === 0) return;
    const quantizeBefore = new Map<NodeProto, NodeProto>();
    for (const [a, s] of shared) {
      quantizeBefore.set(
        s.first,
        makeNode('DynamicQuantizeLinear', [a], [s.quantized, s.scale, s.zeroPoint], {
          name: this.names.fresh(`${a}_dynamic_quantize`),
        }),
      );
    }
    const out: NodeProto[] = [];
    for (const node of graph.node ?? []) {
      const q = quantizeBefore.get(node);
      if (q) out.push(q);
      if (emptied.has(node)) continue;
      const fused = fusedAdds.get(node);
      if (fused) out.push(...fused);
      else out.push(...(rewrites.get(node)?.replacement ?? [node]));
    }
    graph.node = out;
  }

  /** Activations that two or more quantizable MatMul/Gemm nodes of this graph read as A. */
  private findSharedActivations(graph: GraphProto, scope: GraphScope): Map<string, SharedActivation> {
    const shared = new Map<string, SharedActivation>();
    if (!this.opts.shareActivationQuantization) return shared;
    const readers = new Map<string, NodeProto[]>();
    for (const node of graph.node ?? []) {
      const op = node.op_type ?? '';
      if (!isDefaultDomain(node.domain) || (op !== 'MatMul' && op !== 'Gemm') || !this.opts.opTypes.includes(op))
        continue;
      if (this.opts.excludeNodes.includes(node.name ?? '')) continue;
      if (op === 'Gemm' && intAttribute(node, 'transA', 0) === 1) continue;
      if (typeof this.quantizableWeight(scope, node.input?.[1]) === 'string') continue;
      const a = node.input?.[0] ?? '';
      readers.set(a, [...(readers.get(a) ?? []), node]);
    }
    for (const [a, nodes] of readers) {
      if (nodes.length < 2 || !a) continue;
      shared.set(a, {
        quantized: this.names.fresh(`${a}_quantized`),
        scale: this.names.fresh(`${a}_scale`),
        zeroPoint: this.names.fresh(`${a}_zero_point`),
        first: nodes[0],
      });
    }
    return shared;
  }

  /** Finds B as a quantizable constant, or says why not. */
  private quantizableWeight(scope: GraphScope, name: string | undefined): ConstantWeight | string {
    if (!name) return 'B is missing';
    const found = scope.lookupConstant(name);
    if (!found.constant) return `B is not a constant: ${found.reason}`;
    const t = found.weight.tensor;
    if (t.data_type !== TensorDataType.FLOAT)
      return `weight '${name}' is ${TensorDataType[t.data_type ?? 0] ?? t.data_type}, not float32`;
    if ((t.dims ?? []).length !== 2)
      return `weight '${name}' has ${(t.dims ?? []).length} dims; only 2-D weights are quantized`;
    if (isExternal(t)) return `weight '${name}' keeps its data in an external file`;
    const count = elementCount(t.dims);
    if (count < this.opts.minElements)
      return `weight '${name}' has ${count} elements, below minElements (${this.opts.minElements})`;
    return found.weight;
  }

  /** The int8 values and scales for a weight (quantized on first use, shared afterwards); returns tensor names. */
  private quantizedTensors(
    weight: ConstantWeight,
    transposed: boolean,
    alpha: number,
    node: string,
  ): { values: string; scales: string; k: number; n: number } {
    const [d0, d1] = (weight.tensor.dims ?? []).map(Number);
    const k = transposed ? d1 : d0;
    const n = transposed ? d0 : d1;
    const used = this.usedWeights.get(weight.tensor) ?? { weight, nodes: [] };
    used.nodes.push(node);
    this.usedWeights.set(weight.tensor, used);
    const perWeight = this.cache.get(weight.tensor) ?? new Map<string, { values: string; scales: string }>();
    this.cache.set(weight.tensor, perWeight);
    const layout = transposed ? 'nk' : 'kn';
    const key = `${layout}:${alpha}`;
    const hit = perWeight.get(key);
    if (hit) return { ...hit, k, n };
    // The int8 values depend on the layout only; alpha only rescales.
    const sameLayout = [...perWeight.entries()].find(([other]) => other.startsWith(`${layout}:`));
    const q = quantizeWeightSymmetric(tensorToFloat32(weight.tensor), k, n, {
      transposed,
      perChannel: this.opts.perChannel,
      reduceRange: this.opts.reduceRange,
    });
    let valuesName: string;
    if (sameLayout) {
      valuesName = sameLayout[1].values;
    } else {
      valuesName = this.names.fresh(`${weight.name}_quantized`);
      addInitializers(weight.graph, int8Tensor(valuesName, [k, n], q.values));
      this.report.quantizedWeightBytes += q.values.byteLength;
      this.onWeight?.(weight.name);
    }
    const scalesName = this.names.fresh(`${weight.name}_scale`);
    const scales = alpha === 1 ? q.scales : Float32Array.from(q.scales, (s) => s * alpha);
    addInitializers(weight.graph, float32Tensor(scalesName, this.opts.perChannel ? [n] : [], scales));
    this.report.quantizedWeightBytes += scales.byteLength;
    const entry = { values: valuesName, scales: scalesName };
    perWeight.set(key, entry);
    return { ...entry, k, n };
  }

  private dynamicQuantizeMatMul(
    a: string,
    tensors: { values: string; scales: string },
    bias: string | undefined,
    output: string,
    base: string,
  ): NodeProto {
    const shared = this.sharedActivations.get(a);
    if (shared) {
      // Inputs: A (uint8), B (int8), a_scale, b_scale, a_zero_point, b_zero_point (omitted: symmetric), bias.
      const inputs = [
        shared.quantized,
        tensors.values,
        shared.scale,
        tensors.scales,
        shared.zeroPoint,
        '',
        ...(bias ? [bias] : []),
      ];
      if (!bias) inputs.length = 5;
      return makeNode('MatMulIntegerToFloat', inputs, [output], {
        name: this.names.fresh(`${base}_quant`),
        domain: MICROSOFT_DOMAIN,
      });
    }
    // Inputs: A, B (int8), b_scale, b_zero_point (omitted: symmetric), bias.
    const inputs = [a, tensors.values, tensors.scales, '', ...(bias ? [bias] : [])];
    if (!bias) inputs.length = 3;
    return makeNode('DynamicQuantizeMatMul', inputs, [output], {
      name: this.names.fresh(`${base}_quant`),
      domain: MICROSOFT_DOMAIN,
    });
  }

  private rewriteMatMul(
    node: NodeProto,
    graph: GraphProto,
    scope: GraphScope,
    label: string,
    alreadyFused: Map<NodeProto, NodeProto[]>,
  ): NodeRewrite | string {
    const [a, b] = node.input ?? [];
    const weight = this.quantizableWeight(scope, b);
    if (typeof weight === 'string') return weight;
    const y = node.output?.[0] ?? '';
    const n = Number(weight.tensor.dims?.[1]);
    const bias = this.opts.fuseBias ? this.foldableBias(graph, scope, y, n, alreadyFused) : undefined;
    const tensors = this.quantizedTensors(weight, false, 1, label);
    const base = node.name || y;
    if (bias) {
      graph.value_info = (graph.value_info ?? []).filter((v) => v.name !== y);
      const fused = this.dynamicQuantizeMatMul(a, tensors, bias.name, bias.add.output?.[0] ?? '', base);
      this.report.quantized.push({
        node: label,
        opType: 'MatMul',
        weight: weight.name,
        shape: [tensors.k, tensors.n],
        bias: bias.name,
      });
      return { replacement: [fused], fusedAdd: bias.add };
    }
    this.report.quantized.push({ node: label, opType: 'MatMul', weight: weight.name, shape: [tensors.k, tensors.n] });
    return { replacement: [this.dynamicQuantizeMatMul(a, tensors, undefined, y, base)] };
  }

  /** `y` feeds exactly one Add whose other input is a constant float32 [n] vector: that vector becomes the kernel's bias. */
  private foldableBias(
    graph: GraphProto,
    scope: GraphScope,
    y: string,
    n: number,
    alreadyFused: Map<NodeProto, NodeProto[]>,
  ): { add: NodeProto; name: string } | undefined {
    if (countUses(graph, y) !== 1) return undefined;
    const add = (graph.node ?? []).find((c) => (c.input ?? []).includes(y));
    if (
      add?.op_type !== 'Add' ||
      !isDefaultDomain(add.domain) ||
      (add.input ?? []).length !== 2 ||
      alreadyFused.has(add)
    )
      return undefined;
    const other = add.input![0] === y ? add.input![1] : add.input![0];
    if (other === y) return undefined;
    const found = scope.lookupConstant(other);
    if (!found.constant) return undefined;
    const t = found.weight.tensor;
    if (
      t.data_type !== TensorDataType.FLOAT ||
      isExternal(t) ||
      (t.dims ?? []).length !== 1 ||
      Number(t.dims![0]) !== n
    )
      return undefined;
    return { add, name: other };
  }

  private rewriteGemm(node: NodeProto, scope: GraphScope, label: string): NodeRewrite | string {
    const [a, b, c] = node.input ?? [];
    const weight = this.quantizableWeight(scope, b);
    if (typeof weight === 'string') return weight;
    const transA = intAttribute(node, 'transA', 0) === 1;
    const transB = intAttribute(node, 'transB', 0) === 1;
    const alpha = floatAttribute(node, 'alpha', 1);
    const beta = floatAttribute(node, 'beta', 1);
    if (!Number.isFinite(alpha) || alpha === 0) return `alpha is ${alpha}`;
    const y = node.output?.[0] ?? '';
    const base = node.name || y;
    const nodes: NodeProto[] = [];
    let input = a;
    if (transA) {
      input = this.names.fresh(`${a}_transposed`);
      nodes.push(
        makeNode('Transpose', [a], [input], {
          name: this.names.fresh(`${base}_transpose_a`),
          attributes: [attr.ints('perm', [1, 0])],
        }),
      );
    }
    const tensors = this.quantizedTensors(weight, transB, alpha, label);
    const n = tensors.n;
    let bias: string | undefined;
    let addAfter: string | undefined;
    if (c && beta !== 0) {
      const found = scope.lookupConstant(c);
      const t = found.constant ? found.weight.tensor : undefined;
      const dims = (t?.dims ?? []).map(Number);
      const rowLike =
        t &&
        t.data_type === TensorDataType.FLOAT &&
        !isExternal(t) &&
        dims.every((d, i) => d === 1 || (i === dims.length - 1 && d === n)) &&
        dims.length <= 2;
      if (t && rowLike) {
        const values = tensorToFloat32(t);
        if (beta === 1 && dims.length === 1 && dims[0] === n) {
          bias = c;
        } else {
          const row = new Float32Array(n);
          for (let j = 0; j < n; j++) row[j] = beta * values[values.length === 1 ? 0 : j];
          bias = this.names.fresh(`${c}_bias`);
          addInitializers(weight.graph, float32Tensor(bias, [n], row));
        }
      } else if (t && t.data_type === TensorDataType.FLOAT && !isExternal(t) && beta !== 1) {
        addAfter = this.names.fresh(`${c}_scaled`);
        addInitializers(
          weight.graph,
          float32Tensor(
            addAfter,
            dims,
            Float32Array.from(tensorToFloat32(t), (v) => v * beta),
          ),
        );
      } else if (beta !== 1) {
        const betaName = this.names.fresh(`${base}_beta`);
        addInitializers(weight.graph, float32Tensor(betaName, [], [beta]));
        addAfter = this.names.fresh(`${c}_scaled`);
        nodes.push(makeNode('Mul', [c, betaName], [addAfter], { name: this.names.fresh(`${base}_beta_mul`) }));
      } else {
        addAfter = c;
      }
    }
    if (addAfter) {
      const product = this.names.fresh(`${y}_matmul`);
      nodes.push(this.dynamicQuantizeMatMul(input, tensors, undefined, product, base));
      nodes.push(makeNode('Add', [product, addAfter], [y], { name: this.names.fresh(`${base}_add_c`) }));
    } else {
      nodes.push(this.dynamicQuantizeMatMul(input, tensors, bias, y, base));
    }
    this.report.quantized.push({
      node: label,
      opType: 'Gemm',
      weight: weight.name,
      shape: [tensors.k, n],
      ...(bias ? { bias: c } : {}),
    });
    return { replacement: nodes };
  }
}

/**
 * Quantizes the model's MatMul/Gemm weights to int8 (see the module comment). Returns the new model's bytes,
 * or no model when nothing was quantized; the report says what happened to every MatMul/Gemm.
 */
export function quantizeDynamicInt8(
  bytes: Uint8Array,
  options: Int8DynamicOptions = {},
  onWeight?: (name: string) => void,
): { model?: Uint8Array; report: Int8DynamicReport } {
  const model = decodeModel(bytes);
  const quantizer = new DynamicQuantizer(model, resolveOptions(options), onWeight);
  quantizer.run();
  const report = quantizer.report;
  return report.quantized.length > 0 ? { model: encodeModel(model), report } : { report };
}
