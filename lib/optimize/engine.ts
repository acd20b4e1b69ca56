/**
 * The optimization engine: analysis → ranked recommendations → candidates → one measured trade-off table.
 *
 *   const { table, candidates } = await runOptimizationEngine({ model: bytes, workDir });
 *
 * Candidates are the original, each applicable registered technique, and sensible combinations
 * (a weight transform followed by graph-optimize; pruning followed by int8-dynamic); session-tuning then
 * tunes the best of those. Every candidate is measured against the original on the same inputs in this
 * one run, each in a child process of its own (so its peak RSS is its own and a crash in onnxruntime
 * only loses that candidate): raw and gzip size, session load time, p50/p95 latency at batch 1 and at a
 * larger batch when the batch dim is dynamic, throughput, peak memory, and agreement with the original
 * (max abs error, cosine, top-1 for class scores). The accuracy budget rejects candidates with the reason;
 * the best within it (lib/optimize/score.ts) is the one-click choice. A candidate that onnxruntime cannot
 * load or run is marked failed and never offered.
 *
 * Works with whatever lib/optimize/techniques/index.ts registers (or the `registry` given).
 */

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel, type ModelAnalysis } from '../onnx/analyze';
import { decodeModel } from '../onnx/model';
import type { TargetSpec } from '../targets/targetSpec';
import { resolveBudget } from './budget';
import { type Built, CandidateBuilder } from './candidateBuild';
import { bestCandidate, CandidateJudge, type EngineCandidate } from './candidateJudge';
import { CandidateMeter } from './candidateMeasure';
import { candidateId, candidatePlan, ORIGINAL_CANDIDATE, selectTechniques } from './candidatePlan';
import { type EngineInputs, makeEngineInputs } from './engineInputs';
import { OptimizationNotPossibleError } from './errors';
import type { MeasureResponse } from './measureProtocol';
import { type EngineProgress, StepProgress } from './progress';
import { opMix, recommendTechniques, tableAnalysis } from './recommend';
import type { FixedInputJson } from './sampleInputs';
import { SCORE_DEFINITION } from './score';
import type { CalibrationSample, OptimizationTechnique } from './technique';
import { techniques as registeredTechniques } from './techniques';
import { defaultSessionOptions, SESSION_TUNING_ID } from './techniques/sessionTuning';
import type { AccuracyBudget, OptimizationTable, ServingSessionOptions } from './types';

export type { EngineCandidate } from './candidateJudge';
export { candidateId, candidatePlan, ORIGINAL_CANDIDATE } from './candidatePlan';
export type { EngineProgress } from './progress';

export interface EngineOptions {
  model: Uint8Array;
  /** Candidate models are written here as `<id>.onnx` (created if missing; the caller removes it). */
  workDir: string;
  target?: Partial<TargetSpec>;
  /** Technique ids to try; default every registered one. Unknown ids are an error. */
  techniques?: string[];
  /** Default: lib/optimize/techniques/index.ts. */
  registry?: OptimizationTechnique[];
  budget?: Partial<AccuracyBudget>;
  /** For static quantization; also used as the agreement inputs (realistic data beats noise). */
  calibration?: CalibrationSample[];
  /** Input values to use as given (e.g. a sample rate) and sizes for symbolic dims (e.g. { sequence: 512 }). */
  inputs?: { fixed?: Record<string, FixedInputJson>; dims?: Record<string, number> };
  techniqueOptions?: Record<string, Record<string, unknown>>;
  /** Treat rank-2 outputs as class scores for top-1 agreement: 'auto' (default) when they have ≥2 columns. */
  classifier?: 'auto' | boolean;
  /** Also build combinations (default true). */
  combinations?: boolean;
  measure?: {
    /** Timed milliseconds per candidate and batch size (default 600). */
    measureMs?: number;
    /** The larger batch (default 16), when the batch dim is dynamic. */
    largeBatch?: number;
    /** Rows compared for agreement (default 256 in batches of 32; 64 single runs when the batch dim is fixed). */
    agreementSamples?: number;
    /** Measure each candidate this many times (a process each) and keep its least disturbed round (default 1). */
    rounds?: number;
    /** Per candidate child process (default 180 s). */
    timeoutMs?: number;
  };
  onProgress?: (p: EngineProgress) => void;
}

export interface EngineResult {
  table: OptimizationTable;
  candidates: EngineCandidate[];
  analysis: ModelAnalysis;
}

export function resolveTarget(partial?: Partial<TargetSpec>): TargetSpec {
  const threads = partial?.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1)
    throw new OptimizationNotPossibleError(
      'invalid-target',
      `target threads must be a positive integer, got ${threads}`,
    );
  return { kind: partial?.kind ?? 'cpu', sameMachine: partial?.sameMachine ?? false, threads };
}

export async function runOptimizationEngine(opts: EngineOptions): Promise<EngineResult> {
  const started = performance.now();
  const progress = (p: EngineProgress) => opts.onProgress?.(p);
  progress({ phase: 'analyze', fraction: 0, detail: 'analyzing the model' });

  const decoded = decodeModel(opts.model);
  const analysis = analyzeModel(decoded);
  const target = resolveTarget(opts.target);
  const budget = resolveBudget(opts.budget);
  const selected = selectTechniques(opts.registry ?? registeredTechniques, opts.techniques);
  const mix = opMix(decoded, analysis);
  const recommendations = recommendTechniques(analysis, mix, target, selected);
  await mkdir(opts.workDir, { recursive: true });
  const scratch = await mkdtemp(path.join(opts.workDir, '.scratch-'));

  try {
    const inputs = makeEngineInputs(analysis, {
      inputs: opts.inputs,
      calibration: opts.calibration,
      largeBatch: opts.measure?.largeBatch,
      agreementSamples: opts.measure?.agreementSamples,
    });
    const plan = candidatePlan(
      selected.map((t) => t.id),
      opts.combinations ?? true,
    );
    const tuning = selected.find((t) => t.id === SESSION_TUNING_ID);
    // A step each: every build, every measurement (the original's too), and tuning's build and measurement.
    const steps = new StepProgress(plan.length + plan.length + 1 + (tuning ? 2 : 0), progress);

    const builder = new CandidateBuilder({
      model: opts.model,
      analysis,
      techniques: selected,
      context: { target, workDir: scratch, calibration: opts.calibration, sampleInputs: inputs.batch1 },
      techniqueOptions: opts.techniqueOptions,
      steps,
    });
    for (const techniques of plan) await builder.build(techniques, true);

    // Measure: the original first (its outputs are the reference), then each candidate, one at a time.
    const defaults = defaultSessionOptions(target);
    const meter = new CandidateMeter({ workDir: opts.workDir, scratch }, inputs, {
      measureMs: opts.measure?.measureMs ?? 600,
      timeoutMs: opts.measure?.timeoutMs ?? 180_000,
      rounds: Math.max(1, opts.measure?.rounds ?? 1),
    });
    steps.report('measure', ORIGINAL_CANDIDATE, 'measuring the original');
    const original = await meter.measure(ORIGINAL_CANDIDATE, opts.model, defaults);
    steps.next();
    if (!original.response.ok || !original.outputs) throw originalNotMeasurable(original.response);
    const dropLargeBatch = !original.response.largeBatch;
    if (dropLargeBatch) meter.dropLargeBatch();

    const judge = new CandidateJudge({
      model: opts.model,
      original,
      target,
      budget,
      agreementRows: inputs.agreementRows,
      classifier: opts.classifier ?? 'auto',
      largeBatchSize: inputs.largeBatch ? inputs.largeBatchSize : undefined,
      titles: new Map(selected.map((t) => [t.id, t.title])),
    });
    const candidates: EngineCandidate[] = [judge.originalCandidate(defaults)];
    const measureBuilt = async (b: Built) => {
      if (b.skipped) return;
      const id = candidateId(b.techniques);
      if (b.state !== 'built' || !b.model) {
        candidates.push(judge.notBuilt(id, b));
        return;
      }
      const sessionOptions = b.sessionOptions ?? defaults;
      steps.report('measure', id, 'measuring');
      const m = await meter.measure(id, b.model, sessionOptions);
      steps.next();
      candidates.push(await judge.measured(id, b, m, sessionOptions));
    };
    for (const techniques of plan) await measureBuilt(builder.get(candidateId(techniques))!);

    // Session tuning on the best model so far (the original when nothing beat it).
    if (tuning) {
      const bestSoFar = bestCandidate(candidates)!;
      const base = bestSoFar.id === ORIGINAL_CANDIDATE ? builder.original() : builder.get(bestSoFar.id)!;
      const techniques = [...base.techniques, SESSION_TUNING_ID];
      steps.report('tune', candidateId(techniques), `tuning session options of ${bestSoFar.id}`);
      const tuned = await builder.apply(tuning, base, techniques, 'tune');
      steps.next();
      if (bestSoFar.id !== ORIGINAL_CANDIDATE)
        tuned.notes.unshift(`tuned on ${bestSoFar.id}, the best candidate before tuning`);
      await measureBuilt(tuned);
    }

    const best = bestCandidate(candidates)!;
    progress({ phase: 'done', fraction: 1, candidate: best.id, detail: `best: ${best.id}` });
    const table = assembleTable({
      target,
      budget,
      analysis: tableAnalysis(analysis, mix),
      recommendations,
      candidates,
      best: best.id,
      method: methodDescription(inputs, meter.settings, !dropLargeBatch, opts.calibration, defaults),
      started,
    });
    return { table, candidates, analysis };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The table as plain JSON data (no undefined fields, no model paths): it travels through Temporal and into Postgres. */
function assembleTable(
  run: Omit<OptimizationTable, 'candidates' | 'score' | 'elapsedMs'> & {
    candidates: EngineCandidate[];
    started: number;
  },
): OptimizationTable {
  const table: OptimizationTable = {
    target: run.target,
    budget: run.budget,
    analysis: run.analysis,
    recommendations: run.recommendations,
    candidates: run.candidates.map(({ modelPath: _p, ...c }) => c),
    best: run.best,
    method: run.method,
    score: SCORE_DEFINITION,
    elapsedMs: Math.round(performance.now() - run.started),
  };
  return JSON.parse(JSON.stringify(table)) as OptimizationTable;
}

function originalNotMeasurable(response: MeasureResponse): OptimizationNotPossibleError {
  const r = response as Extract<MeasureResponse, { ok: false }>;
  return new OptimizationNotPossibleError(
    'model-not-measurable',
    `the original model does not ${r.stage === 'load' ? 'load' : 'run'} in onnxruntime with the sample inputs (${r.error}); ` +
      'give input values or dim sizes (fixed inputs / --inputs) so it can be measured',
  );
}

/** How the rows were measured, in words, for the table. */
function methodDescription(
  inputs: EngineInputs,
  settings: { measureMs: number; rounds: number },
  largeBatchMeasured: boolean,
  calibration: CalibrationSample[] | undefined,
  defaults: ServingSessionOptions,
): string {
  return (
    `each candidate in its own process, one at a time${settings.rounds > 1 ? `, best of ${settings.rounds} rounds` : ''}, ${settings.measureMs} ms of timed runs per batch size after 5 warm-up runs; ` +
    `the same seeded inputs for all (batch 1${inputs.largeBatch && largeBatchMeasured ? ` and ${inputs.largeBatchSize}` : ''}); ` +
    `agreement over ${inputs.agreementRows} row(s)${calibration?.length ? ' of the calibration data' : ' of generated inputs'}; ` +
    `candidates without tuned options run with ${JSON.stringify(defaults)}`
  );
}
