/**
 * What the engine learns before it transforms anything: the op mix (which operator families hold the
 * weights and the nodes), parameters, MACs, dynamic dims and the target — and from that, the registered
 * techniques ranked with their expected effect and the reasons they apply or not.
 */

import type { ModelAnalysis } from '../onnx/analyze';
import { forEachGraph, forEachNode, isDefaultDomain } from '../onnx/graph';
import type { OnnxModel, TensorProto } from '../onnx/model';
import { tensorByteSize } from '../onnx/tensor';
import type { TargetSpec } from '../targets/targetSpec';
import { isBatchDynamic } from './sampleInputs';
import type { OptimizationTechnique } from './technique';
import type { OptimizationTable, TechniqueRecommendation } from './types';

export type OpFamily =
  | 'matmul'
  | 'conv'
  | 'recurrent'
  | 'attention'
  | 'normalization'
  | 'elementwise'
  | 'shape'
  | 'control'
  | 'quantized'
  | 'other';

const FAMILY_OF: Record<string, OpFamily> = {
  MatMul: 'matmul',
  Gemm: 'matmul',
  MatMulInteger: 'quantized',
  'com.microsoft.DynamicQuantizeMatMul': 'quantized',
  'com.microsoft.MatMulIntegerToFloat': 'quantized',
  QLinearMatMul: 'quantized',
  QLinearConv: 'quantized',
  QuantizeLinear: 'quantized',
  DequantizeLinear: 'quantized',
  ConvInteger: 'quantized',
  Conv: 'conv',
  ConvTranspose: 'conv',
  'com.microsoft.FusedConv': 'conv',
  LSTM: 'recurrent',
  GRU: 'recurrent',
  RNN: 'recurrent',
  Softmax: 'attention',
  'com.microsoft.Attention': 'attention',
  'com.microsoft.MultiHeadAttention': 'attention',
  LayerNormalization: 'normalization',
  BatchNormalization: 'normalization',
  InstanceNormalization: 'normalization',
  'com.microsoft.SkipLayerNormalization': 'normalization',
  Add: 'elementwise',
  Sub: 'elementwise',
  Mul: 'elementwise',
  Div: 'elementwise',
  Relu: 'elementwise',
  LeakyRelu: 'elementwise',
  Sigmoid: 'elementwise',
  Tanh: 'elementwise',
  Erf: 'elementwise',
  Pow: 'elementwise',
  Sqrt: 'elementwise',
  Exp: 'elementwise',
  Log: 'elementwise',
  Clip: 'elementwise',
  Max: 'elementwise',
  Min: 'elementwise',
  Neg: 'elementwise',
  Abs: 'elementwise',
  Gelu: 'elementwise',
  'com.microsoft.Gelu': 'elementwise',
  'com.microsoft.FastGelu': 'elementwise',
  Reshape: 'shape',
  Transpose: 'shape',
  Squeeze: 'shape',
  Unsqueeze: 'shape',
  Concat: 'shape',
  Slice: 'shape',
  Gather: 'shape',
  Shape: 'shape',
  Flatten: 'shape',
  Expand: 'shape',
  Split: 'shape',
  Cast: 'shape',
  Identity: 'shape',
  Constant: 'shape',
  ConstantOfShape: 'shape',
  Pad: 'shape',
  If: 'control',
  Loop: 'control',
  Scan: 'control',
};

export function opFamily(opKey: string): OpFamily {
  return FAMILY_OF[opKey] ?? 'other';
}

export interface OpMix {
  /** Nodes per family. */
  nodes: Record<OpFamily, number>;
  /** Share (0..1) of weight bytes read first by each family's nodes. */
  weightShare: Record<OpFamily, number>;
}

const FAMILIES: OpFamily[] = [
  'matmul',
  'conv',
  'recurrent',
  'attention',
  'normalization',
  'elementwise',
  'shape',
  'control',
  'quantized',
  'other',
];

/** Which operator families hold the model's weights: each weight is charged to the first node that reads it. */
export function opMix(model: OnnxModel, analysis: ModelAnalysis): OpMix {
  const nodes = Object.fromEntries(FAMILIES.map((f) => [f, 0])) as Record<OpFamily, number>;
  for (const [op, n] of Object.entries(analysis.opHistogram)) nodes[opFamily(op)] += n;
  const weightBytes = new Map<string, number>();
  const root = model.graph ?? {};
  forEachGraph(root, (g) => {
    for (const t of g.initializer ?? []) weightBytes.set(t.name ?? '', tensorByteSize(t));
    for (const node of g.node ?? []) {
      if (node.op_type === 'Constant' && isDefaultDomain(node.domain)) {
        const t = node.attribute?.find((a) => a.name === 'value')?.t as TensorProto | undefined;
        if (t && node.output?.[0]) weightBytes.set(node.output[0], tensorByteSize(t));
      }
    }
  });
  const charged = Object.fromEntries(FAMILIES.map((f) => [f, 0])) as Record<OpFamily, number>;
  const seen = new Set<string>();
  forEachNode(root, (node) => {
    if (node.op_type === 'Constant' && isDefaultDomain(node.domain)) return;
    const key = isDefaultDomain(node.domain) ? (node.op_type ?? '') : `${node.domain}.${node.op_type}`;
    for (const input of node.input ?? []) {
      const bytes = weightBytes.get(input);
      if (bytes === undefined || seen.has(input)) continue;
      seen.add(input);
      charged[opFamily(key)] += bytes;
    }
  });
  const total = [...weightBytes.values()].reduce((a, b) => a + b, 0) || 1;
  const weightShare = Object.fromEntries(FAMILIES.map((f) => [f, charged[f] / total])) as Record<OpFamily, number>;
  return { nodes, weightShare };
}

export function tableAnalysis(analysis: ModelAnalysis, mix: OpMix): OptimizationTable['analysis'] {
  const opMixOut: Record<string, number> = {};
  for (const f of FAMILIES) if (mix.nodes[f]) opMixOut[f] = mix.nodes[f];
  return {
    parameterCount: analysis.parameterCount,
    weightBytes: analysis.weightBytes,
    macsEstimate: analysis.macsEstimate,
    opMix: opMixOut,
    dynamicDims: analysis.dynamicDims,
    batchDynamic: isBatchDynamic(analysis.inputs),
  };
}

const pct = (x: number) => `${Math.round(100 * x)}%`;
const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** Why each technique is worth trying on this model, as a priority (higher first) and reasons. */
function judge(id: string, a: ModelAnalysis, mix: OpMix, target: TargetSpec): { priority: number; reasons: string[] } {
  const w = mix.weightShare;
  const matmulNodes = mix.nodes.matmul;
  switch (id) {
    case 'int8-dynamic':
      return {
        priority: 40 + 60 * w.matmul,
        reasons: [
          `${pct(w.matmul)} of the weights (${mb(a.weightBytes)}) feed ${matmulNodes} MatMul/Gemm node(s)`,
          target.kind === 'cpu'
            ? 'CPU target: integer GEMM kernels run 8-bit weights directly'
            : 'GPU target: dynamic INT8 kernels are CPU ones',
        ],
      };
    case 'int8-static':
      return {
        priority: 30 + 60 * (w.conv + 0.6 * w.matmul),
        reasons: [
          `${pct(w.conv)} of the weights feed Conv, ${pct(w.matmul)} MatMul/Gemm`,
          'activations quantized with calibrated scales: no run-time quantization cost',
        ],
      };
    case 'fp16-weights':
      return {
        priority: 25 + 20 * Math.min(1, a.weightBytes / (8 * 2 ** 20)),
        reasons: [
          `${mb(a.weightBytes)} of float weights would be stored in half the bytes`,
          target.kind === 'cpu'
            ? 'CPU target: weights are cast back to float32, so expect size, not speed'
            : 'GPU target: FP16 kernels',
        ],
      };
    case 'prune-magnitude':
      return {
        priority: 20,
        reasons: ['zeroed weights compress well (smaller image layers); dense kernels run at the same speed'],
      };
    case 'distill-mlp': {
      const mlp =
        matmulNodes > 0 && mix.nodes.conv + mix.nodes.recurrent + mix.nodes.attention + mix.nodes.control === 0;
      return {
        priority: mlp ? 55 : 5,
        reasons: [
          mlp
            ? 'the model is an MLP: a narrower student can be trained on its outputs here'
            : 'not an MLP: needs an external training job',
        ],
      };
    }
    case 'graph-optimize': {
      const fusable = mix.nodes.matmul + mix.nodes.conv + mix.nodes.normalization + mix.nodes.elementwise;
      return {
        priority: 30 + Math.min(15, fusable / 4),
        reasons: [
          `${fusable} node(s) in fusable families (MatMul/Conv/normalization/element-wise)`,
          target.sameMachine
            ? "the image runs on this machine: level 'all'"
            : "the image may run elsewhere: portable level 'extended'",
        ],
      };
    }
    case 'session-tuning':
      return {
        priority: target.threads > 1 ? 35 : 10,
        reasons: [
          `the target has ${target.threads} core(s) per replica`,
          mix.nodes.control
            ? `${mix.nodes.control} control-flow node(s): execution mode may matter`
            : 'threads vs. cost is measured, not guessed',
        ],
      };
    default:
      return { priority: 20, reasons: [] };
  }
}

export function recommendTechniques(
  analysis: ModelAnalysis,
  mix: OpMix,
  target: TargetSpec,
  list: OptimizationTechnique[],
): TechniqueRecommendation[] {
  const judged = list.map((t) => {
    const applicable = t.applicability(analysis, target);
    const { priority, reasons } = judge(t.id, analysis, mix, target);
    let expectedEffect: string;
    try {
      expectedEffect = t.expectedEffect(analysis, target);
    } catch (err) {
      expectedEffect = `(no estimate: ${(err as Error).message})`;
    }
    return {
      technique: t.id,
      title: t.title,
      rank: 0,
      applicable: applicable.ok,
      reasons: applicable.ok ? reasons : [`not applicable: ${applicable.reason}`],
      expectedEffect,
      priority: applicable.ok ? priority : -1,
    };
  });
  judged.sort((a, b) => b.priority - a.priority);
  return judged.map(({ priority: _p, ...r }, i) => ({ ...r, rank: i + 1 }));
}
