/** Models Ferry generates: the demo's example MLP, models for tests, and deliberately broken fixtures. */

export { CORRUPT_MODELS, type CorruptModelKind, corruptModelBytes } from './corruptModels';
export {
  buildMlpModel,
  DEFAULT_MLP_OPSET,
  exampleModelSpec,
  generateMlpModel,
  type MlpLayerWeights,
  type MlpSpec,
  mlpParameterCount,
  mlpWeights,
  seededUniform,
} from './mlp';
