/**
 * Every optimization technique Ferry can offer. The engine (lib/optimize/engine.ts) works with whatever
 * is listed here: add a technique by importing it and appending it to `techniques`.
 */
import type { OptimizationTechnique } from '../technique';
import { distillMlp } from './distill';
import { fp16WeightsTechnique } from './fp16';
import { graphOptimize } from './graphOptimize';
import { int8DynamicTechnique } from './int8Dynamic';
import { int8Static } from './int8Static';
import { pruneMagnitude } from './prune';
import { sessionTuning } from './sessionTuning';

export const techniques: OptimizationTechnique[] = [
  graphOptimize,
  sessionTuning,
  int8DynamicTechnique,
  fp16WeightsTechnique,
  int8Static,
  pruneMagnitude,
  distillMlp,
];

export {
  type CalibrationData,
  type CalibrationMethod,
  calibrateRanges,
  generateCalibrationData,
  userCalibrationData,
} from './calibration';
export { type DistillOptions, detectMlp, distillMlp } from './distill';
export {
  convertToFloat16Compute,
  DEFAULT_FP16_BLOCK_LIST,
  type Fp16Options,
  fp16WeightsTechnique,
  storeWeightsAsFloat16,
} from './fp16';
export {
  type Int8DynamicOptions,
  type Int8DynamicReport,
  int8DynamicTechnique,
  quantizeDynamicInt8,
} from './int8Dynamic';
export {
  type Int8StaticOptions,
  type Int8StaticReport,
  int8Static,
  quantizeStaticQdq,
  unfusedQdqNodes,
} from './int8Static';
export { type PruneOptions, type PruneReport, pruneMagnitude, pruneModel } from './prune';
