/**
 * Deliberately broken model files, one per kind of upload problem, each with the rejection it must get.
 * Built from a small real MLP so that exactly one thing is wrong in each.
 */
import { buildMlpModel, seededUniform } from './mlp';
import { encodeModel, type NodeProto, type OnnxModel, type TensorProto } from './model';
import { TensorDataLocation } from './tensor';
import type { ModelValidationCode } from './validate';

export type CorruptModelKind =
  | 'empty'
  | 'truncated'
  | 'random-bytes'
  | 'dangling-input'
  | 'initializer-size-mismatch'
  | 'external-data-path'
  | 'absolute-external-path'
  | 'cycle';

/** For each kind: the code validateModel must answer and a string its message must contain (the culprit). */
export const CORRUPT_MODELS: Readonly<Record<CorruptModelKind, { code: ModelValidationCode; culprit: string }>> = {
  empty: { code: 'empty-model', culprit: 'empty' },
  truncated: { code: 'not-protobuf', culprit: 'truncated' },
  'random-bytes': { code: 'not-protobuf', culprit: 'not an ONNX model' },
  'dangling-input': { code: 'dangling-input', culprit: "'missing_activation'" },
  'initializer-size-mismatch': { code: 'initializer-size-mismatch', culprit: "'layer0.weight'" },
  'external-data-path': { code: 'external-data-path', culprit: '../outside/weights.bin' },
  'absolute-external-path': { code: 'external-data-path', culprit: '/etc/weights.bin' },
  cycle: { code: 'cycle', culprit: "'layer0_matmul'" },
};

const SMALL = { inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 7, name: 'corrupt' };

function node(model: OnnxModel, name: string): NodeProto {
  const found = model.graph?.node?.find((n) => n.name === name);
  if (!found) throw new Error(`fixture base model has no node ${name}`);
  return found;
}

function initializer(model: OnnxModel, name: string): TensorProto {
  const found = model.graph?.initializer?.find((t) => t.name === name);
  if (!found) throw new Error(`fixture base model has no initializer ${name}`);
  return found;
}

function moveToExternal(t: TensorProto, location: string): void {
  const length = t.raw_data?.length ?? 0;
  delete t.raw_data;
  t.data_location = TensorDataLocation.EXTERNAL;
  t.external_data = [
    { key: 'location', value: location },
    { key: 'offset', value: '0' },
    { key: 'length', value: String(length) },
  ];
}

export function corruptModelBytes(kind: CorruptModelKind): Uint8Array {
  const model = buildMlpModel(SMALL);
  switch (kind) {
    case 'empty':
      return new Uint8Array(0);
    case 'truncated': {
      // A larger model, cut inside its weights: the graph field claims more bytes than the file has.
      const whole = encodeModel(buildMlpModel({ ...SMALL, hiddenDims: [64, 64] }));
      return whole.slice(0, Math.floor(whole.length / 2));
    }
    case 'random-bytes': {
      const rand = seededUniform(1234);
      return Uint8Array.from({ length: 4096 }, () => Math.floor(rand() * 256));
    }
    case 'dangling-input':
      node(model, 'layer1_matmul').input = ['missing_activation', 'layer1.weight'];
      break;
    case 'initializer-size-mismatch': {
      const w = initializer(model, 'layer0.weight');
      w.raw_data = w.raw_data?.slice(0, -4); // one float short of dims [4, 8]
      break;
    }
    case 'external-data-path':
      moveToExternal(initializer(model, 'layer0.weight'), '../outside/weights.bin');
      break;
    case 'absolute-external-path':
      moveToExternal(initializer(model, 'layer0.weight'), '/etc/weights.bin');
      break;
    case 'cycle':
      // The first layer now reads the second layer's output: layer0_matmul → … → layer1_add → layer0_matmul.
      node(model, 'layer0_matmul').input = ['output', 'layer0.weight'];
      break;
    default:
      throw new Error(`unknown corrupt model kind: ${kind as string}`);
  }
  return encodeModel(model);
}
