// Entry point of the workflow bundle: every workflow the worker runs.
export { deployModelWorkflow } from './deployModel';
export { monitorDeploymentWorkflow } from './monitorDeployment';
