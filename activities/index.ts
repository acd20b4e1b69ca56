// Every activity the pipeline worker registers, one folder per stage.
export { ingestModel } from './upload/ingestModel';
export { measureOptimizationCandidates, recordOptimizationChoice } from './optimize';
export { buildAndPushModelImage } from './container';
export { deployToLocalTarget } from './deploy';
export { collectDeploymentMetrics, hibernateDeployment, destroyDeployment } from './monitor';
