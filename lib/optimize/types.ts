/**
 * The optimize stage's vocabulary: the accuracy budget, the measured trade-off table and its rows, the
 * plans offered for approval and the serving settings a candidate carries into its image. Plain data only:
 * the table travels through Temporal payloads and into Postgres, and workflows/types.ts re-exports these
 * for the workflow, the SDK, the CLI and the dashboard.
 */
import type { TargetSpec } from '../targets/targetSpec';

/**
 * How far a candidate's outputs may drift from the original's on the same inputs before it is rejected.
 * Defaults: cosine ≥ 0.99 and top-1 ≥ 0.99 (see lib/optimize/budget.ts for why).
 */
export interface AccuracyBudget {
  /** Lowest cosine similarity allowed between a candidate's and the original's outputs (per output, the worst counts). */
  minCosine: number;
  /** Lowest fraction of rows whose arg-max class agrees, for outputs that look like class scores. */
  minTop1: number;
  /** Largest absolute difference allowed; unset = not budgeted (it depends on the output's scale). */
  maxAbsError?: number;
}

/** Session options that travel into the image's ferry-models.json (onnxruntime SessionOptions fields). */
export interface ServingSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
}

/**
 * Dynamic batching that travels into the image's ferry-models.json (the server's `batching` entry). The
 * optimize stage sets it only for a model measured to treat rows independently and to gain from batching.
 */
export interface ServingBatching {
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

export interface TensorSpec {
  name: string;
  dataType: string;
  shape: Array<number | string | null>;
}

/** What the optimize stage learned about the model (a JSON summary of lib/onnx's analysis). */
export interface ModelSummary {
  parameterCount: number;
  weightBytes: number;
  nodeCount: number;
  opHistogram: Record<string, number>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opsets: Array<{ domain: string; version: number }>;
  dynamicDims: string[];
}

export interface PlanOption {
  id: string;
  title: string;
  description: string;
  /** Expected effect, in words, before anything is measured. */
  expectedEffect: string;
  /** The techniques applied in order ([] for the original). */
  techniques?: string[];
  /** The measured trade-off row of this candidate. */
  row?: CandidateMeasurement;
  /** Within the accuracy budget: only such plans can be approved. */
  withinBudget?: boolean;
  /** Why the budget rejects it. */
  rejection?: string;
}

/** One row of the trade-off table: a candidate measured against the original on the same inputs. */
export interface CandidateMeasurement {
  sizeBytes: number;
  gzipBytes: number;
  /** Session creation time (file read, graph optimization, kernel setup). */
  loadMs: number;
  batch1: ThroughputFigures;
  /** At a larger batch, when the model's batch dim is dynamic. */
  largeBatch?: ThroughputFigures;
  /** Peak resident memory of the process that loaded and ran this candidate alone. */
  peakRssBytes: number;
  /** Peak RSS minus the RSS just before the session was created: what the model itself costs. */
  modelRssBytes: number;
  agreement: AgreementFigures;
  /** Cores the session uses (threads in its session options, capped by the target). */
  cores: number;
  /** The score: estimated USD per million batch-1 inferences (lower is better); see lib/optimize/score.ts. */
  costPerMillionUsd: number;
  /** Ratios against the original measured in the same run (>1 = better for size/speed). */
  vsOriginal: {
    sizeRatio: number;
    gzipRatio: number;
    speedupP50: number;
    speedupLargeBatch?: number;
    memoryRatio: number;
  };
}

export interface ThroughputFigures extends LatencyFigures {
  batchSize: number;
  iterations: number;
  /** Items per second at this batch size (batch / mean latency). */
  throughputPerSec: number;
}

/** A candidate's agreement with the original, as lib/optimize/agreement.ts defines it. */
export interface AgreementFigures {
  maxAbsError: number;
  /** Worst cosine similarity over the outputs. */
  cosine: number;
  /** Fraction of rows whose arg-max agrees, over outputs that look like class scores; null when none do. */
  top1: number | null;
  /** Input rows compared. */
  samples: number;
}

export type CandidateState = 'measured' | 'not-applicable' | 'failed';

export interface OptimizationCandidate {
  id: string;
  title: string;
  techniques: string[];
  state: CandidateState;
  /** Measured: within the accuracy budget (and so offered as a plan that can be approved). */
  withinBudget: boolean;
  /** Measured but outside the budget: why. */
  rejection?: string;
  /** Not applicable / failed: why (shown as "not applicable: <reason>"). */
  reason?: string;
  notes: string[];
  row?: CandidateMeasurement;
  /** The candidate's model in the object store (measured candidates only). */
  artifact?: { objectKey: string; sha256: string };
  sessionOptions?: ServingSessionOptions;
  /** Set when serving this candidate with dynamic batching was measured safe and worthwhile. */
  batching?: ServingBatching;
}

export interface TechniqueRecommendation {
  technique: string;
  title: string;
  /** 1 = try first. */
  rank: number;
  applicable: boolean;
  /** Why it applies (what in the analysis makes it worthwhile) or why not. */
  reasons: string[];
  expectedEffect: string;
}

/** The optimize stage's result: analysis, ranked recommendations and the measured table. Plain data. */
export interface OptimizationTable {
  target: TargetSpec;
  budget: AccuracyBudget;
  analysis: {
    parameterCount: number;
    weightBytes: number;
    macsEstimate: number;
    opMix: Record<string, number>;
    dynamicDims: string[];
    batchDynamic: boolean;
  };
  recommendations: TechniqueRecommendation[];
  candidates: OptimizationCandidate[];
  /** The one-click choice: lowest score within the budget. */
  best: string;
  /** How rows were measured, in words (inputs, iterations, isolation). */
  method: string;
  /** What the score means, in words. */
  score: string;
  elapsedMs: number;
}

export interface LatencyFigures {
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
}

export interface BenchmarkReport {
  plan: string;
  iterations: number;
  batchSize: number;
  original: { sizeBytes: number; latency: LatencyFigures };
  candidate: { sizeBytes: number; latency: LatencyFigures };
  /** Largest absolute difference between the two models' outputs on the same inputs. */
  maxAbsDiff: number;
  speedup: number;
  sizeRatio: number;
}
