/**
 * Deterministic transformer-encoder blocks (BERT-style, post-LayerNorm) as real ONNX graphs, for tests and
 * benchmarks of transforms on MatMul-heavy models:
 *
 *   x ─ Q/K/V projections (MatMul + Add) ─ split heads ─ Q·Kᵀ (MatMul, B computed at run time) ─ scale ─ Softmax
 *     ─ ·V (MatMul, B computed at run time) ─ merge heads ─ output projection ─ + x ─ LayerNorm
 *     ─ FFN (MatMul + Add, GELU from Erf, MatMul + Add) ─ + ─ LayerNorm ─ y
 *
 * LayerNorm is the LayerNormalization op (opset ≥ 17) or its decomposition (ReduceMean, Sub, Pow, Sqrt, Div),
 * as exporters wrote it before opset 17. Same spec → byte-identical model.
 */
import { attr, constantNode, irVersionForOpset, makeNode, tensorValueInfo } from './builders';
import { seededUniform } from './mlp';
import { encodeModel, type GraphProto, type NodeProto, type OnnxModel, type TensorProto } from './model';
import { float32Tensor, int64Tensor, TensorDataType } from './tensor';

export interface EncoderBlockSpec {
  dModel: number;
  heads: number;
  ffnDim: number;
  /** Stacked blocks (default 1). */
  layers?: number;
  /** Sequence length: a number fixes it, a string names a symbolic dim (default 'sequence'). */
  seqLen?: number | string;
  seed?: number;
  /** 'op': LayerNormalization (needs opset ≥ 17, the default); 'decomposed': ReduceMean/Sub/Pow/Sqrt/Div. */
  layerNorm?: 'op' | 'decomposed';
  /** Default-domain opset (default 17; at least 13). */
  opset?: number;
  /** Where weights live (default initializers). */
  weightsIn?: 'initializers' | 'constants';
  name?: string;
}

export function buildEncoderBlockModel(spec: EncoderBlockSpec): OnnxModel {
  const { dModel: d, heads, ffnDim } = spec;
  const opset = spec.opset ?? 17;
  const layerNorm = spec.layerNorm ?? 'op';
  if (d % heads !== 0) throw new Error(`dModel ${d} is not divisible by heads ${heads}`);
  if (opset < 13) throw new Error('encoder blocks need opset 13 or later');
  if (layerNorm === 'op' && opset < 17) throw new Error('LayerNormalization needs opset 17 or later');
  const headDim = d / heads;
  const rand = seededUniform(spec.seed ?? 7);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const addTensor = (t: TensorProto): void => {
    if (spec.weightsIn === 'constants') nodes.push(constantNode(t.name as string, t));
    else initializers.push(t);
  };
  const uniform = (n: number, limit: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * limit);
  const node = (op: string, inputs: string[], output: string, attributes: ReturnType<typeof attr.int>[] = []) => {
    nodes.push(makeNode(op, inputs, [output], { name: `${output}_node`, attributes }));
    return output;
  };
  // Shared shape and scalar constants (always initializers: they are not weights).
  initializers.push(int64Tensor('split_heads_shape', [4], [0, 0, heads, headDim]));
  initializers.push(int64Tensor('merge_heads_shape', [3], [0, 0, d]));
  initializers.push(float32Tensor('attention_scale', [], [1 / Math.sqrt(headDim)]));
  initializers.push(float32Tensor('gelu_sqrt2', [], [Math.SQRT2]));
  initializers.push(float32Tensor('gelu_half', [], [0.5]));
  initializers.push(float32Tensor('one', [], [1]));
  if (layerNorm === 'decomposed') {
    initializers.push(float32Tensor('ln_epsilon', [], [1e-5]));
    initializers.push(float32Tensor('two', [], [2]));
  }

  const linear = (x: string, prefix: string, inDim: number, outDim: number): string => {
    const limit = Math.sqrt(6 / (inDim + outDim));
    addTensor(float32Tensor(`${prefix}.weight`, [inDim, outDim], uniform(inDim * outDim, limit)));
    addTensor(float32Tensor(`${prefix}.bias`, [outDim], uniform(outDim, 0.05)));
    const mm = node('MatMul', [x, `${prefix}.weight`], `${prefix}_matmul`);
    return node('Add', [mm, `${prefix}.bias`], `${prefix}_out`);
  };
  const norm = (x: string, prefix: string): string => {
    const gamma = Float32Array.from({ length: d }, () => 1 + (rand() * 2 - 1) * 0.1);
    addTensor(float32Tensor(`${prefix}.gamma`, [d], gamma));
    addTensor(float32Tensor(`${prefix}.beta`, [d], uniform(d, 0.05)));
    if (layerNorm === 'op') {
      return node('LayerNormalization', [x, `${prefix}.gamma`, `${prefix}.beta`], `${prefix}_out`, [
        attr.int('axis', -1),
        attr.float('epsilon', 1e-5),
      ]);
    }
    const axes = (input: string, output: string) =>
      opset >= 18
        ? node('ReduceMean', [input, 'reduce_last_axis'], output, [attr.int('keepdims', 1)])
        : node('ReduceMean', [input], output, [attr.ints('axes', [-1]), attr.int('keepdims', 1)]);
    const mean = axes(x, `${prefix}_mean`);
    const centered = node('Sub', [x, mean], `${prefix}_centered`);
    const squared = node('Pow', [centered, 'two'], `${prefix}_squared`);
    const variance = axes(squared, `${prefix}_variance`);
    const shifted = node('Add', [variance, 'ln_epsilon'], `${prefix}_variance_eps`);
    const std = node('Sqrt', [shifted], `${prefix}_std`);
    const normed = node('Div', [centered, std], `${prefix}_normalized`);
    const scaled = node('Mul', [normed, `${prefix}.gamma`], `${prefix}_scaled`);
    return node('Add', [scaled, `${prefix}.beta`], `${prefix}_out`);
  };
  if (layerNorm === 'decomposed' && opset >= 18) initializers.push(int64Tensor('reduce_last_axis', [1], [-1]));

  let x = 'input';
  for (let layer = 0; layer < (spec.layers ?? 1); layer++) {
    const p = `layer${layer}`;
    const q = linear(x, `${p}.attention.query`, d, d);
    const k = linear(x, `${p}.attention.key`, d, d);
    const v = linear(x, `${p}.attention.value`, d, d);
    const qh = node('Transpose', [node('Reshape', [q, 'split_heads_shape'], `${p}_q_heads`)], `${p}_q_t`, [
      attr.ints('perm', [0, 2, 1, 3]),
    ]);
    const kh = node('Transpose', [node('Reshape', [k, 'split_heads_shape'], `${p}_k_heads`)], `${p}_k_t`, [
      attr.ints('perm', [0, 2, 3, 1]),
    ]);
    const vh = node('Transpose', [node('Reshape', [v, 'split_heads_shape'], `${p}_v_heads`)], `${p}_v_t`, [
      attr.ints('perm', [0, 2, 1, 3]),
    ]);
    const scores = node('MatMul', [qh, kh], `${p}_attention_scores`);
    const scaled = node('Mul', [scores, 'attention_scale'], `${p}_attention_scaled`);
    const probs = node('Softmax', [scaled], `${p}_attention_probs`, [attr.int('axis', -1)]);
    const context = node('MatMul', [probs, vh], `${p}_attention_context`);
    const merged = node(
      'Reshape',
      [node('Transpose', [context], `${p}_context_t`, [attr.ints('perm', [0, 2, 1, 3])]), 'merge_heads_shape'],
      `${p}_context_merged`,
    );
    const attnOut = linear(merged, `${p}.attention.output`, d, d);
    const h1 = norm(node('Add', [x, attnOut], `${p}_attention_residual`), `${p}.attention.norm`);
    const up = linear(h1, `${p}.ffn.up`, d, ffnDim);
    // GELU(u) = 0.5 · u · (1 + erf(u / √2))
    const erf = node('Erf', [node('Div', [up, 'gelu_sqrt2'], `${p}_gelu_div`)], `${p}_gelu_erf`);
    const gelu = node(
      'Mul',
      [node('Mul', [up, node('Add', [erf, 'one'], `${p}_gelu_add`)], `${p}_gelu_mul`), 'gelu_half'],
      `${p}_gelu_out`,
    );
    const down = linear(gelu, `${p}.ffn.down`, ffnDim, d);
    x = norm(node('Add', [h1, down], `${p}_ffn_residual`), `${p}.ffn.norm`);
  }
  nodes.push(makeNode('Identity', [x], ['output'], { name: 'output_identity' }));
  const seq = spec.seqLen ?? 'sequence';
  const graph: GraphProto = {
    name: spec.name ?? 'encoder',
    node: nodes,
    initializer: initializers,
    input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', seq, d])],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', seq, d])],
  };
  return {
    ir_version: irVersionForOpset(opset),
    producer_name: 'ferry',
    producer_version: '0.1.0',
    doc_string: `transformer encoder: ${spec.layers ?? 1} block(s), d=${d}, heads=${heads}, ffn=${ffnDim}, LayerNorm ${layerNorm}`,
    opset_import: [{ domain: '', version: opset }],
    graph,
  };
}

export function generateEncoderBlockModel(spec: EncoderBlockSpec): Uint8Array {
  return encodeModel(buildEncoderBlockModel(spec));
}
