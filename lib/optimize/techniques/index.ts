/**
 * Every optimization technique Ferry can offer. The engine (lib/optimize/engine.ts) works with whatever
 * is listed here: add a technique by importing it and appending it to `techniques`.
 */
import type { OptimizationTechnique } from '../technique';
import { graphOptimize } from './graphOptimize';
import { sessionTuning } from './sessionTuning';

export const techniques: OptimizationTechnique[] = [graphOptimize, sessionTuning];
