/**
 * The contract every optimization technique implements (lib/optimize/techniques/*). A technique is a
 * graph transform written in TypeScript (or an onnxruntime pass); it either returns a model that
 * onnxruntime loads, or says why it does not apply and leaves the model unchanged.
 */

import type { ModelAnalysis } from '../onnx/analyze';
import type { TargetSpec } from '../targets/targetSpec';
import type { ServingSessionOptions } from './types';

export type { ServingSessionOptions, TargetSpec };

/** Calibration inputs for static quantization: named float32 tensors, one entry per sample. */
export interface CalibrationSample {
  [inputName: string]: { dims: number[]; data: Float32Array };
}

/** One input tensor as plain data (no onnxruntime types), e.g. for a technique that needs to run the model. */
export interface FeedTensor {
  type: 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8' | 'int8';
  dims: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;
}
export type Feeds = Record<string, FeedTensor>;

export interface TechniqueContext {
  analysis: ModelAnalysis;
  target: TargetSpec;
  /** Scratch directory for passes that need files (onnxruntime); removed by the caller. */
  workDir: string;
  calibration?: CalibrationSample[];
  /** Technique-specific options (e.g. { sparsity: 0.5 }, { blockList: ['Softmax'] }). */
  options?: Record<string, unknown>;
  /**
   * Representative batch-1 inputs, the ones the engine benchmarks every candidate with (user-fixed
   * values such as a sample rate are already in them). Set by the engine; optional for callers.
   */
  sampleInputs?: Feeds;
  /** Progress of long transforms, 0..1, for activity heartbeats and CLI bars. */
  onProgress?: (fraction: number, detail?: string) => void;
}

export type TechniqueResult =
  | {
      applied: true;
      model: Uint8Array;
      notes: string[];
      /** Session options the technique found best (session-tuning); they go into the image with the model. */
      sessionOptions?: ServingSessionOptions;
    }
  | { applied: false; reason: string };

export interface OptimizationTechnique {
  /** Stable id used in plans, the CLI (`--techniques`) and the approval Update, e.g. 'int8-dynamic'. */
  id: string;
  title: string;
  description: string;
  /** Expected effect before measuring, in words, for recommendations. */
  expectedEffect(analysis: ModelAnalysis, target: TargetSpec): string;
  /** Cheap check from the analysis alone; `apply` may still decline with a reason. */
  applicability(analysis: ModelAnalysis, target: TargetSpec): { ok: true } | { ok: false; reason: string };
  apply(model: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult>;
}
