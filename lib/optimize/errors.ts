/**
 * The error the optimize stage's callers branch on. A run that cannot succeed however often it is retried —
 * the original does not run on the inputs Ferry can make for it, or a setting is wrong — throws an
 * OptimizationNotPossibleError whose `code` says which; anything else (a child process that died, a full
 * disk) may pass on a retry. The engine's child process hands the code back to its parent (engineProcess.ts).
 */

export type OptimizationNotPossibleCode =
  /** onnxruntime cannot load or run the original on the sample inputs. */
  'model-not-measurable' | 'unknown-technique' | 'invalid-budget' | 'invalid-target';

export const OPTIMIZATION_NOT_POSSIBLE_CODES: readonly OptimizationNotPossibleCode[] = [
  'model-not-measurable',
  'unknown-technique',
  'invalid-budget',
  'invalid-target',
];

export class OptimizationNotPossibleError extends Error {
  override readonly name = 'OptimizationNotPossibleError';

  constructor(
    readonly code: OptimizationNotPossibleCode,
    message: string,
  ) {
    super(message);
  }
}
