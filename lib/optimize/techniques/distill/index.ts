/**
 * Knowledge distillation, where Ferry can run it itself: MLP classifiers and regressors.
 *
 * - detect.ts: recognising an MLP by structure (or saying why a model is not one);
 * - training.ts: the narrower student, its initialisation and training in TypeScript (denseKernels.ts: the math);
 * - export.ts: the student as ONNX, through the teacher's own graph;
 * - options.ts: what a caller may set, and reading it from a plan;
 * - technique.ts: the technique the engine runs (teacher outputs, training data, agreement with the teacher).
 */
export { linearForward } from './denseKernels';
export { type Activation, detectMlp, type MlpLayer, type MlpStructure } from './detect';
export { exportStudent } from './export';
export type { DistillOptions } from './options';
export { DISTILL_MLP_ID, distillMlp, externalTrainingReason } from './technique';
export {
  type DistillLoss,
  distillLoss,
  randomStudent,
  type StudentLayer,
  studentForward,
  studentFromTeacherUnits,
  studentGradients,
  type TrainOptions,
  type TrainResult,
  trainStudent,
} from './training';
