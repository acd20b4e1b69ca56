/**
 * Every optimization technique Ferry can offer. The engine (lib/optimize/engine.ts) works with whatever
 * is listed here: add a technique by importing it and appending it to `techniques`.
 */
import type { OptimizationTechnique } from '../technique';
import { graphOptimize } from './graphOptimize';
import { sessionTuning } from './sessionTuning';
import { int8DynamicTechnique } from './int8Dynamic';
import { fp16WeightsTechnique } from './fp16';
import { int8Static } from './int8Static';
import { pruneMagnitude } from './prune';
import { distillMlp } from './distill';

export const techniques: OptimizationTechnique[] = [graphOptimize, sessionTuning, int8DynamicTechnique, fp16WeightsTechnique, int8Static, pruneMagnitude, distillMlp];

export { int8DynamicTechnique, quantizeDynamicInt8, type Int8DynamicOptions, type Int8DynamicReport } from './int8Dynamic';
export { fp16WeightsTechnique, storeWeightsAsFloat16, convertToFloat16Compute, DEFAULT_FP16_BLOCK_LIST, type Fp16Options } from './fp16';
export { int8Static, quantizeStaticQdq, unfusedQdqNodes, type Int8StaticOptions, type Int8StaticReport } from './int8Static';
export { calibrateRanges, generateCalibrationData, userCalibrationData, type CalibrationMethod, type CalibrationData } from './calibration';
export { pruneMagnitude, pruneModel, type PruneOptions, type PruneReport } from './prune';
export { distillMlp, detectMlp, type DistillOptions } from './distill';
