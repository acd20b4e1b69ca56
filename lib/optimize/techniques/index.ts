/**
 * Every optimization technique Ferry can offer. The engine (lib/optimize/engine.ts) works with whatever
 * is listed here: add a technique by importing it and appending it to `techniques`.
 */
import type { OptimizationTechnique } from '../technique';
import { graphOptimize } from './graphOptimize';
import { sessionTuning } from './sessionTuning';
import { int8DynamicTechnique } from './int8Dynamic';

export const techniques: OptimizationTechnique[] = [graphOptimize, sessionTuning, int8DynamicTechnique];

export { int8DynamicTechnique, quantizeDynamicInt8, type Int8DynamicOptions, type Int8DynamicReport } from './int8Dynamic';
