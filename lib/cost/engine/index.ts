/**
 * The cost engine (pure, deterministic): a workload profile, the model's measurements, the SLO and
 * constraints and the price catalog → ranked deployment options with monthly cost and expected p95.
 */
export { consideredOption, consideredOptions } from './considered';
export * from './constraints';
export { type Calibration, parseCalibration } from './cpuSpeed';
export { measurementsFromCandidate } from './measurements';
export { PlanError, planDeployment, requireChoice } from './plan';
export { EDGE_DEVICES } from './strategies/edge';
export { estimatedClusterNode } from './strategies/kubernetes';
export { formatPlanTable } from './table';
export type * from './types';
export { parseProfile, type WorkloadProfile } from './workloadProfile';
