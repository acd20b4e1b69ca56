/**
 * Deterministic float32 MLPs as real ONNX files: the one-click demo's example model and the models tests run.
 * Same options and seed → byte-identical file. Import through generate.ts.
 */

import { seededUniform } from '../seededRandom';
import { attr, constantNode, irVersionForOpset, makeNode, tensorValueInfo } from './builders';
import { encodeModel, type GraphProto, type NodeProto, type OnnxModel, type TensorProto } from './model';
import { float32Tensor, TensorDataType } from './tensor';

export interface MlpSpec {
  inputDim: number;
  hiddenDims: number[];
  outputDim: number;
  /** PRNG seed for the weights (default 1). */
  seed?: number;
  /** Graph name (default 'mlp'). */
  name?: string;
  /** Where weights live: graph initializers (default) or Constant nodes, as some exporters write them. */
  weightsIn?: 'initializers' | 'constants';
  /** Default-domain opset (default 17). */
  opset?: number;
  /** End with Softmax over the outputs (default false: raw logits). */
  softmax?: boolean;
}

export const DEFAULT_MLP_OPSET = 17;

export { seededUniform } from '../seededRandom';

export interface MlpLayerWeights {
  /** [inDim, outDim], row-major: y = x · weight + bias. */
  weight: Float32Array;
  bias: Float32Array;
  inDim: number;
  outDim: number;
}

/** The weights generateMlpModel stores, layer by layer (Glorot-uniform weights, small uniform biases). */
export function mlpWeights(spec: MlpSpec): MlpLayerWeights[] {
  const rand = seededUniform(spec.seed ?? 1);
  const dims = [spec.inputDim, ...spec.hiddenDims, spec.outputDim];
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1) throw new Error(`MLP dims must be positive integers, got [${dims.join(', ')}]`);
  }
  return dims.slice(1).map((outDim, i) => {
    const inDim = dims[i];
    const limit = Math.sqrt(6 / (inDim + outDim));
    const weight = new Float32Array(inDim * outDim);
    for (let j = 0; j < weight.length; j++) weight[j] = (rand() * 2 - 1) * limit;
    const bias = new Float32Array(outDim);
    for (let j = 0; j < bias.length; j++) bias[j] = (rand() * 2 - 1) * 0.1;
    return { weight, bias, inDim, outDim };
  });
}

/** The MLP as an OnnxModel, for callers that want to change it before encoding (tests, fixtures). */
export function buildMlpModel(spec: MlpSpec): OnnxModel {
  const opset = spec.opset ?? DEFAULT_MLP_OPSET;
  const layers = mlpWeights(spec);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const addWeight = (t: TensorProto): void => {
    if (spec.weightsIn === 'constants') nodes.push(constantNode(t.name as string, t));
    else initializers.push(t);
  };
  let x = 'input';
  layers.forEach((layer, i) => {
    const last = i === layers.length - 1;
    const w = `layer${i}.weight`;
    const b = `layer${i}.bias`;
    addWeight(float32Tensor(w, [layer.inDim, layer.outDim], layer.weight));
    addWeight(float32Tensor(b, [layer.outDim], layer.bias));
    const pre = last ? (spec.softmax ? 'logits' : 'output') : `layer${i}_pre`;
    nodes.push(makeNode('MatMul', [x, w], [`layer${i}_matmul_out`], { name: `layer${i}_matmul` }));
    nodes.push(makeNode('Add', [`layer${i}_matmul_out`, b], [pre], { name: `layer${i}_add` }));
    if (!last) {
      nodes.push(makeNode('Relu', [pre], [`layer${i}_out`], { name: `layer${i}_relu` }));
      x = `layer${i}_out`;
    }
  });
  if (spec.softmax) {
    // Negative axes arrived in opset 11; before that axis 1 means the same for a 2-D input.
    nodes.push(
      makeNode('Softmax', ['logits'], ['output'], {
        name: 'softmax',
        attributes: [attr.int('axis', opset >= 11 ? -1 : 1)],
      }),
    );
  }
  const graph: GraphProto = {
    name: spec.name ?? 'mlp',
    node: nodes,
    initializer: initializers,
    input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', spec.inputDim])],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', spec.outputDim])],
  };
  return {
    ir_version: irVersionForOpset(opset),
    producer_name: 'ferry',
    producer_version: '0.1.0',
    doc_string: `MLP ${[spec.inputDim, ...spec.hiddenDims, spec.outputDim].join('-')}, seed ${spec.seed ?? 1}`,
    opset_import: [{ domain: '', version: opset }],
    graph,
  };
}

export function generateMlpModel(spec: MlpSpec): Uint8Array {
  return encodeModel(buildMlpModel(spec));
}

/** Parameters of an MLP with these dims (weights + biases). */
export function mlpParameterCount(spec: Pick<MlpSpec, 'inputDim' | 'hiddenDims' | 'outputDim'>): number {
  const dims = [spec.inputDim, ...spec.hiddenDims, spec.outputDim];
  return dims.slice(1).reduce((sum, out, i) => sum + dims[i] * out + out, 0);
}

/**
 * The demo's example: an MNIST-shaped classifier (784 → h → h → 10) whose float32 weights weigh about
 * `sizeMb` MiB (default 10). h is rounded to a multiple of 64, as real layer widths usually are.
 */
export function exampleModelSpec(sizeMb = 10): MlpSpec {
  if (!(sizeMb > 0)) throw new Error(`exampleModelSpec: size must be positive, got ${sizeMb}`);
  const params = (sizeMb * 1024 * 1024) / 4;
  // params = 784h + h + h·h + h + 10h + 10 → h² + 796h + (10 − params) = 0
  const h = (-796 + Math.sqrt(796 * 796 + 4 * (params - 10))) / 2;
  const width = Math.max(64, Math.round(h / 64) * 64);
  return { inputDim: 784, hiddenDims: [width, width], outputDim: 10, seed: 1, name: 'example-mlp' };
}
