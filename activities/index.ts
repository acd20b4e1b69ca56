// Every activity the pipeline worker registers, one folder per stage.

export { buildAndPushModelImage } from './container';
export { deployToLocalTarget } from './deploy';
export { planDeploymentOptions, recordDeploymentDecision } from './deploy/planOptions';
export { collectDeploymentMetrics, destroyDeployment, hibernateDeployment } from './monitor';
export { accountInterval, recordAnomalyTransition, sendAnomalyAlert } from './monitor/cost';
export { applyPredictiveFloor } from './monitor/predictive';
export { measureOptimizationCandidates, recordOptimizationChoice } from './optimize';
export { ingestModel } from './upload/ingestModel';
