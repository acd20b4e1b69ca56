/**
 * Deterministic small convolutional classifiers as real ONNX files, for tests and benchmarks of transforms
 * on Conv-heavy models:
 *
 *   input [batch, C, H, W] ─ (Conv ─ Relu) × n ─ Flatten ─ Gemm (or MatMul + Add) ─ [Softmax] ─ output [batch, classes]
 *
 * Each Conv pads by kernel/2 and may stride. The default opset is 13; older opsets (down to 7) are allowed so
 * that transforms needing a newer one (QuantizeLinear: 10, per-axis: 13) have something to upgrade.
 * Same spec → byte-identical model.
 */
import { attr, constantNode, irVersionForOpset, makeNode, tensorValueInfo } from './builders';
import { seededUniform } from './mlp';
import { encodeModel, type GraphProto, type NodeProto, type OnnxModel, type TensorProto } from './model';
import { float32Tensor, TensorDataType } from './tensor';

export interface CnnConvSpec {
  channels: number;
  /** Square kernel size (default 3). */
  kernel?: number;
  /** Stride in both spatial dims (default 1). */
  stride?: number;
}

export interface CnnSpec {
  /** [channels, height, width] of one input image. */
  inputShape: [number, number, number];
  convs: CnnConvSpec[];
  classes: number;
  /** Classifier head: Gemm (default) or MatMul + Add, as some exporters write it. */
  head?: 'gemm' | 'matmul';
  softmax?: boolean;
  /** Default-domain opset (default 13). */
  opset?: number;
  weightsIn?: 'initializers' | 'constants';
  seed?: number;
  name?: string;
}

/** Spatial size after a Conv with pad kernel/2 (floor) on both sides. */
function convOut(size: number, kernel: number, stride: number): number {
  const pad = Math.floor(kernel / 2);
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

export function buildCnnModel(spec: CnnSpec): OnnxModel {
  const opset = spec.opset ?? 13;
  const rand = seededUniform(spec.seed ?? 3);
  const uniform = (n: number, limit: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * limit);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const addWeight = (t: TensorProto): void => {
    if (spec.weightsIn === 'constants') nodes.push(constantNode(t.name as string, t));
    else initializers.push(t);
  };
  let [channels, height, width] = spec.inputShape;
  let x = 'input';
  spec.convs.forEach((conv, i) => {
    const k = conv.kernel ?? 3;
    const stride = conv.stride ?? 1;
    const pad = Math.floor(k / 2);
    const fanIn = channels * k * k;
    // He-uniform weights keep activations at a similar scale through the Relus.
    addWeight(
      float32Tensor(
        `conv${i}.weight`,
        [conv.channels, channels, k, k],
        uniform(conv.channels * fanIn, Math.sqrt(6 / fanIn)),
      ),
    );
    addWeight(float32Tensor(`conv${i}.bias`, [conv.channels], uniform(conv.channels, 0.1)));
    nodes.push(
      makeNode('Conv', [x, `conv${i}.weight`, `conv${i}.bias`], [`conv${i}_out`], {
        name: `conv${i}`,
        attributes: [
          attr.ints('kernel_shape', [k, k]),
          attr.ints('pads', [pad, pad, pad, pad]),
          attr.ints('strides', [stride, stride]),
        ],
      }),
    );
    nodes.push(makeNode('Relu', [`conv${i}_out`], [`relu${i}_out`], { name: `relu${i}` }));
    x = `relu${i}_out`;
    channels = conv.channels;
    height = convOut(height, k, stride);
    width = convOut(width, k, stride);
  });
  const features = channels * height * width;
  nodes.push(makeNode('Flatten', [x], ['flat'], { name: 'flatten', attributes: [attr.int('axis', 1)] }));
  const logits = spec.softmax ? 'logits' : 'output';
  const limit = Math.sqrt(6 / (features + spec.classes));
  if ((spec.head ?? 'gemm') === 'gemm') {
    // Stored as PyTorch's Linear exports it: weight [classes, features] with transB=1.
    addWeight(float32Tensor('fc.weight', [spec.classes, features], uniform(spec.classes * features, limit)));
    addWeight(float32Tensor('fc.bias', [spec.classes], uniform(spec.classes, 0.1)));
    nodes.push(
      makeNode('Gemm', ['flat', 'fc.weight', 'fc.bias'], [logits], { name: 'fc', attributes: [attr.int('transB', 1)] }),
    );
  } else {
    addWeight(float32Tensor('fc.weight', [features, spec.classes], uniform(spec.classes * features, limit)));
    addWeight(float32Tensor('fc.bias', [spec.classes], uniform(spec.classes, 0.1)));
    nodes.push(makeNode('MatMul', ['flat', 'fc.weight'], ['fc_matmul_out'], { name: 'fc_matmul' }));
    nodes.push(makeNode('Add', ['fc_matmul_out', 'fc.bias'], [logits], { name: 'fc_add' }));
  }
  if (spec.softmax)
    nodes.push(makeNode('Softmax', ['logits'], ['output'], { name: 'softmax', attributes: [attr.int('axis', 1)] }));
  const graph: GraphProto = {
    name: spec.name ?? 'cnn',
    node: nodes,
    initializer: initializers,
    input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', ...spec.inputShape])],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', spec.classes])],
  };
  return {
    ir_version: irVersionForOpset(opset),
    producer_name: 'ferry',
    producer_version: '0.1.0',
    doc_string: `CNN ${spec.inputShape.join('x')} → ${spec.convs.map((c) => c.channels).join('-')} → ${spec.classes}, seed ${spec.seed ?? 3}`,
    opset_import: [{ domain: '', version: opset }],
    graph,
  };
}

export function generateCnnModel(spec: CnnSpec): Uint8Array {
  return encodeModel(buildCnnModel(spec));
}
