/** Models Ferry generates: the demo's example MLP, models for tests, and deliberately broken fixtures. */
export {
  buildMlpModel,
  DEFAULT_MLP_OPSET,
  exampleModelSpec,
  generateMlpModel,
  mlpParameterCount,
  mlpWeights,
  seededUniform,
  type MlpLayerWeights,
  type MlpSpec,
} from './mlp';
export { CORRUPT_MODELS, corruptModelBytes, type CorruptModelKind } from './corruptModels';
