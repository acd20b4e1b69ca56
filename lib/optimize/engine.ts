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

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { analyzeModel, type ModelAnalysis } from '../onnx/analyze';
import { decodeModel } from '../onnx/model';
import type { TargetSpec } from '../targets/targetSpec';
import { compareOutputs } from './agreement';
import { budgetRejection, resolveBudget } from './budget';
import { measureInChild } from './measure';
import type { MeasureRequest, MeasureResponse, OutputsWire } from './measureProtocol';
import { opMix, recommendTechniques, tableAnalysis } from './recommend';
import { type FixedInputJson, feedsToWire, generateFeeds, isBatchDynamic } from './sampleInputs';
import { coresUsed, costPerMillionUsd, pickBest, SCORE_DEFINITION } from './score';
import { decideServingBatching } from './servingBatching';
import type { CalibrationSample, Feeds, OptimizationTechnique, TechniqueContext } from './technique';
import { techniques as registeredTechniques } from './techniques';
import { GRAPH_OPTIMIZE_ID } from './techniques/graphOptimize';
import { defaultSessionOptions, SESSION_TUNING_ID } from './techniques/sessionTuning';
import type {
  AccuracyBudget,
  CandidateMeasurement,
  OptimizationCandidate,
  OptimizationTable,
  ServingSessionOptions,
} from './types';

export const ORIGINAL_CANDIDATE = 'original';

export interface EngineProgress {
  phase: 'analyze' | 'transform' | 'measure' | 'tune' | 'done';
  /** 0..1 over the whole run. */
  fraction: number;
  candidate?: string;
  detail?: string;
}

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

export interface EngineCandidate extends OptimizationCandidate {
  /** The candidate's model file in workDir (measured candidates). */
  modelPath?: string;
}

export interface EngineResult {
  table: OptimizationTable;
  candidates: EngineCandidate[];
  analysis: ModelAnalysis;
}

export function resolveTarget(partial?: Partial<TargetSpec>): TargetSpec {
  const threads = partial?.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`target threads must be a positive integer, got ${threads}`);
  return { kind: partial?.kind ?? 'cpu', sameMachine: partial?.sameMachine ?? false, threads };
}

export function candidateId(techniques: string[]): string {
  // '.' joins steps: ids become image tags, which allow [A-Za-z0-9_.-] only.
  return techniques.length ? techniques.join('.') : ORIGINAL_CANDIDATE;
}

/** The candidates to build, in order: singles, then combinations whose steps are all selected. */
export function candidatePlan(selected: string[], combinations: boolean): string[][] {
  const model = selected.filter((id) => id !== SESSION_TUNING_ID);
  const plan: string[][] = model.map((id) => [id]);
  if (combinations) {
    if (model.includes(GRAPH_OPTIMIZE_ID)) {
      for (const id of model) if (id !== GRAPH_OPTIMIZE_ID) plan.push([id, GRAPH_OPTIMIZE_ID]);
    }
    if (model.includes('prune-magnitude') && model.includes('int8-dynamic'))
      plan.push(['prune-magnitude', 'int8-dynamic']);
  }
  return plan;
}

interface Built {
  techniques: string[];
  model?: Uint8Array;
  analysis?: ModelAnalysis;
  sessionOptions?: ServingSessionOptions;
  notes: string[];
  state: 'built' | 'not-applicable' | 'failed';
  reason?: string;
  /** Not listed in the table (a combination whose prefix did not apply). */
  skipped?: boolean;
}

export async function runOptimizationEngine(opts: EngineOptions): Promise<EngineResult> {
  const started = performance.now();
  const progress = (p: EngineProgress) => opts.onProgress?.(p);
  progress({ phase: 'analyze', fraction: 0, detail: 'analyzing the model' });

  const decoded = decodeModel(opts.model);
  const analysis = analyzeModel(decoded);
  const target = resolveTarget(opts.target);
  const budget = resolveBudget(opts.budget);
  const registry = opts.registry ?? registeredTechniques;
  const selected = selectTechniques(registry, opts.techniques);
  const mix = opMix(decoded, analysis);
  const recommendations = recommendTechniques(analysis, mix, target, selected);
  await mkdir(opts.workDir, { recursive: true });
  const scratch = await mkdtemp(path.join(opts.workDir, '.scratch-'));

  try {
    // The same inputs for every candidate, made once.
    const feedOpts = { dims: opts.inputs?.dims, fixed: opts.inputs?.fixed };
    const batch1 = generateFeeds(analysis.inputs, { ...feedOpts, batch: 1, seed: 1 });
    const batchDynamic = isBatchDynamic(analysis.inputs);
    const largeBatchSize = opts.measure?.largeBatch ?? 16;
    const largeBatch =
      batchDynamic && largeBatchSize > 1
        ? generateFeeds(analysis.inputs, { ...feedOpts, batch: largeBatchSize, seed: 2 })
        : undefined;
    const agreement = agreementFeeds(
      analysis,
      feedOpts,
      batchDynamic,
      opts.calibration,
      opts.measure?.agreementSamples,
    );
    const agreementRows = agreement.reduce((n, f) => n + rowsOf(f), 0);

    // Build every planned candidate (in this process: transforms are TypeScript or onnxruntime passes).
    const plan = candidatePlan(
      selected.map((t) => t.id),
      opts.combinations ?? true,
    );
    const tuning = selected.find((t) => t.id === SESSION_TUNING_ID);
    const totalSteps = plan.length + plan.length + 1 + (tuning ? 2 : 0);
    let step = 0;
    const built = new Map<string, Built>();
    const byId = new Map(selected.map((t) => [t.id, t]));
    const ctxBase = { target, workDir: scratch, calibration: opts.calibration, sampleInputs: batch1 };

    const build = async (techniques: string[], report: boolean): Promise<Built> => {
      const key = candidateId(techniques);
      const cached = built.get(key);
      if (cached) return cached;
      const prefix: Built =
        techniques.length === 1
          ? { techniques: [], model: opts.model, analysis, notes: [], state: 'built' }
          : await build(techniques.slice(0, -1), false);
      const id = techniques[techniques.length - 1]!;
      const technique = byId.get(id)!;
      let result: Built;
      if (prefix.state !== 'built') {
        // A combination whose first steps did not apply is not a candidate of its own.
        result = { techniques, notes: [], state: 'not-applicable', reason: prefix.reason, skipped: true };
      } else {
        result = await applyTechnique(technique, prefix, techniques, {
          ...ctxBase,
          options: opts.techniqueOptions?.[id],
          onProgress: (f, detail) =>
            progress({ phase: 'transform', fraction: (step + f) / totalSteps, candidate: key, detail }),
        });
        // A later step that re-expands what an earlier one shrank (onnxruntime folding FP16 weights' Casts back
        // into float32 constants) makes a combination that is only a worse copy of its parts.
        if (result.state === 'built' && techniques.length > 1 && result.model!.length > 1.5 * prefix.model!.length) {
          result = {
            techniques,
            notes: [],
            state: 'not-applicable',
            reason: `it undoes ${candidateId(techniques.slice(0, -1))}: the model grows from ${(prefix.model!.length / 2 ** 20).toFixed(2)} to ${(result.model!.length / 2 ** 20).toFixed(2)} MiB (weights re-expanded)`,
          };
        }
      }
      built.set(key, result);
      if (report) progress({ phase: 'transform', fraction: ++step / totalSteps, candidate: key, detail: result.state });
      return result;
    };
    for (const techniques of plan) await build(techniques, true);

    // Measure: the original first (its outputs are the reference), then each candidate, one at a time.
    const defaults = defaultSessionOptions(target);
    const measureOpts = {
      measureMs: opts.measure?.measureMs ?? 600,
      timeoutMs: opts.measure?.timeoutMs ?? 180_000,
      rounds: Math.max(1, opts.measure?.rounds ?? 1),
    };
    const wire = {
      agreement: agreement.map(feedsToWire),
      batch1: feedsToWire(batch1),
      largeBatch: largeBatch ? { batchSize: largeBatchSize, feeds: feedsToWire(largeBatch) } : undefined,
    };
    const measureOne = async (id: string, model: Uint8Array, sessionOptions: ServingSessionOptions) => {
      const modelPath = path.join(opts.workDir, `${id}.onnx`);
      await writeFile(modelPath, model);
      const req: MeasureRequest = {
        modelPath,
        sessionOptions,
        agreement: wire.agreement,
        outputsPath: path.join(scratch, `${id}.outputs.json`),
        batch1: wire.batch1,
        largeBatch: wire.largeBatch,
        warmup: 5,
        minIterations: 20,
        maxIterations: 5000,
        measureMs: measureOpts.measureMs,
      };
      const files = {
        requestPath: path.join(scratch, `${id}.request.json`),
        responsePath: path.join(scratch, `${id}.response.json`),
      };
      let m = await measureInChild(req, files, measureOpts.timeoutMs);
      // More rounds: keep the round with the lowest batch-1 p50 (the least disturbed by other work on the machine).
      for (let round = 1; round < measureOpts.rounds && m.response.ok; round++) {
        const again = await measureInChild(req, files, measureOpts.timeoutMs);
        if (again.response.ok && m.response.ok && again.response.batch1.p50Ms < m.response.batch1.p50Ms)
          m = { ...again, outputs: m.outputs };
      }
      return { ...m, modelPath };
    };

    progress({
      phase: 'measure',
      fraction: step / totalSteps,
      candidate: ORIGINAL_CANDIDATE,
      detail: 'measuring the original',
    });
    const original = await measureOne(ORIGINAL_CANDIDATE, opts.model, defaults);
    step++;
    if (!original.response.ok || !original.outputs) {
      const r = original.response as Extract<MeasureResponse, { ok: false }>;
      throw new Error(
        `the original model does not ${r.stage === 'load' ? 'load' : 'run'} in onnxruntime with the sample inputs (${r.error}); ` +
          'give input values or dim sizes (fixed inputs / --inputs) so it can be measured',
      );
    }
    const reference = original.outputs;
    const origResp = original.response;
    const origGzip = gzipSync(opts.model).length;
    const dropLargeBatch = !origResp.largeBatch;
    if (dropLargeBatch) wire.largeBatch = undefined;

    const rowOf = (
      model: Uint8Array,
      resp: Extract<MeasureResponse, { ok: true }>,
      outputs: OutputsWire,
      sessionOptions: ServingSessionOptions,
    ) => {
      const gzipBytes = model === opts.model ? origGzip : gzipSync(model).length;
      const agreementResult = compareOutputs(reference, outputs, agreementRows, opts.classifier ?? 'auto');
      const cores = coresUsed(sessionOptions, target);
      const row: CandidateMeasurement = {
        sizeBytes: model.length,
        gzipBytes,
        loadMs: resp.loadMs,
        batch1: { ...pickLatency(resp.batch1), batchSize: 1, throughputPerSec: 1000 / resp.batch1.meanMs },
        largeBatch:
          resp.largeBatch && largeBatch
            ? {
                ...pickLatency(resp.largeBatch),
                batchSize: largeBatchSize,
                throughputPerSec: (1000 * largeBatchSize) / resp.largeBatch.meanMs,
              }
            : undefined,
        peakRssBytes: resp.peakRssBytes,
        modelRssBytes: Math.max(0, resp.peakRssBytes - resp.rssBeforeLoadBytes),
        agreement: agreementResult.figures,
        cores,
        costPerMillionUsd: costPerMillionUsd(resp.batch1.p50Ms, cores, resp.peakRssBytes),
        vsOriginal: {
          sizeRatio: opts.model.length / model.length,
          gzipRatio: origGzip / gzipBytes,
          speedupP50: origResp.batch1.p50Ms / resp.batch1.p50Ms,
          speedupLargeBatch:
            resp.largeBatch && origResp.largeBatch ? origResp.largeBatch.p50Ms / resp.largeBatch.p50Ms : undefined,
          memoryRatio: origResp.peakRssBytes / resp.peakRssBytes,
        },
      };
      return { row, problem: agreementResult.problem };
    };

    const servingBatching = (resp: Extract<MeasureResponse, { ok: true }>, row: CandidateMeasurement) =>
      decideServingBatching({ original: origResp.rowIndependence, candidate: resp.rowIndependence, row, budget });

    const candidates: EngineCandidate[] = [];
    const originalRow = rowOf(opts.model, origResp, reference, defaults).row;
    const originalBatching = servingBatching(origResp, originalRow);
    candidates.push({
      id: ORIGINAL_CANDIDATE,
      title: 'Keep as is',
      techniques: [],
      state: 'measured',
      withinBudget: true,
      notes: ['the reference every other candidate is compared with', originalBatching.note],
      row: originalRow,
      sessionOptions: defaults,
      batching: originalBatching.batching,
      modelPath: original.modelPath,
    });

    const measureBuilt = async (b: Built) => {
      if (b.skipped) return;
      const id = candidateId(b.techniques);
      const title = b.techniques.map((t) => byId.get(t)?.title ?? t).join(' → ');
      if (b.state !== 'built' || !b.model) {
        // The steps before the last one were built and are their own candidates: say only what stopped this one.
        const last = b.techniques[b.techniques.length - 1];
        const reason = b.techniques.length > 1 && b.reason ? `${last}: ${b.reason}` : b.reason;
        candidates.push({
          id,
          title,
          techniques: b.techniques,
          state: b.state === 'built' ? 'failed' : b.state,
          withinBudget: false,
          reason,
          notes: [],
        });
        return;
      }
      const sessionOptions = b.sessionOptions ?? defaults;
      progress({ phase: 'measure', fraction: step / totalSteps, candidate: id, detail: 'measuring' });
      const m = await measureOne(id, b.model, sessionOptions);
      step++;
      if (!m.response.ok || !m.outputs) {
        const r = m.response as Extract<MeasureResponse, { ok: false }>;
        await rm(m.modelPath, { force: true }); // never offered, so not kept
        candidates.push({
          id,
          title,
          techniques: b.techniques,
          state: 'failed',
          withinBudget: false,
          reason:
            r.stage === 'load'
              ? `onnxruntime cannot load it: ${r.error}`
              : `onnxruntime fails to run it (${r.stage}): ${r.error}`,
          notes: b.notes,
        });
        return;
      }
      const { row, problem } = rowOf(b.model, m.response, m.outputs, sessionOptions);
      const rejection = problem
        ? `outputs differ from the original's: ${problem}`
        : budgetRejection(row.agreement, budget);
      const batching = rejection ? undefined : servingBatching(m.response, row);
      candidates.push({
        id,
        title,
        techniques: b.techniques,
        state: 'measured',
        withinBudget: !rejection,
        rejection,
        notes: batching ? [...b.notes, batching.note] : b.notes,
        row,
        sessionOptions,
        batching: batching?.batching,
        modelPath: m.modelPath,
      });
    };
    for (const techniques of plan) await measureBuilt(built.get(candidateId(techniques))!);

    // Session tuning on the best model so far (the original when nothing beat it).
    if (tuning) {
      const bestSoFar = bestOf(candidates)!;
      const base: Built =
        bestSoFar.id === ORIGINAL_CANDIDATE
          ? { techniques: [], model: opts.model, analysis, notes: [], state: 'built' }
          : built.get(bestSoFar.id)!;
      const techniques = [...base.techniques, SESSION_TUNING_ID];
      progress({
        phase: 'tune',
        fraction: step / totalSteps,
        candidate: candidateId(techniques),
        detail: `tuning session options of ${bestSoFar.id}`,
      });
      const tuned = await applyTechnique(tuning, base, techniques, {
        ...ctxBase,
        options: opts.techniqueOptions?.[SESSION_TUNING_ID],
        onProgress: (f, detail) =>
          progress({ phase: 'tune', fraction: (step + f) / totalSteps, candidate: candidateId(techniques), detail }),
      });
      step++;
      if (bestSoFar.id !== ORIGINAL_CANDIDATE)
        tuned.notes.unshift(`tuned on ${bestSoFar.id}, the best candidate before tuning`);
      await measureBuilt(tuned);
    }

    const best = bestOf(candidates)!;
    progress({ phase: 'done', fraction: 1, candidate: best.id, detail: `best: ${best.id}` });
    const table: OptimizationTable = {
      target,
      budget,
      analysis: tableAnalysis(analysis, mix),
      recommendations,
      candidates: candidates.map(({ modelPath: _p, ...c }) => c),
      best: best.id,
      method:
        `each candidate in its own process, one at a time${measureOpts.rounds > 1 ? `, best of ${measureOpts.rounds} rounds` : ''}, ${measureOpts.measureMs} ms of timed runs per batch size after 5 warm-up runs; ` +
        `the same seeded inputs for all (batch 1${largeBatch && !dropLargeBatch ? ` and ${largeBatchSize}` : ''}); ` +
        `agreement over ${agreementRows} row(s)${opts.calibration?.length ? ' of the calibration data' : ' of generated inputs'}; ` +
        `candidates without tuned options run with ${JSON.stringify(defaults)}`,
      score: SCORE_DEFINITION,
      elapsedMs: Math.round(performance.now() - started),
    };
    // Plain JSON data (no undefined fields), as it travels through Temporal and into Postgres.
    return { table: JSON.parse(JSON.stringify(table)) as OptimizationTable, candidates, analysis };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function pickLatency(t: { p50Ms: number; p95Ms: number; meanMs: number; iterations: number }) {
  return { p50Ms: t.p50Ms, p95Ms: t.p95Ms, meanMs: t.meanMs, iterations: t.iterations };
}

function bestOf(candidates: OptimizationCandidate[]): OptimizationCandidate | undefined {
  const pool = candidates.filter((c) => c.state === 'measured' && c.withinBudget && c.row);
  const best = pickBest(
    pool.map((c) => ({
      id: c.id,
      cost: c.row!.costPerMillionUsd,
      p50Ms: c.row!.batch1.p50Ms,
      gzipBytes: c.row!.gzipBytes,
    })),
  );
  return best && pool.find((c) => c.id === best.id);
}

function selectTechniques(registry: OptimizationTechnique[], ids?: string[]): OptimizationTechnique[] {
  if (!ids) return [...registry];
  const byId = new Map(registry.map((t) => [t.id, t]));
  const unknown = ids.filter((id) => !byId.has(id));
  if (unknown.length) {
    throw new Error(
      `unknown technique${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}; registered: ${registry.map((t) => t.id).join(', ') || '(none)'}`,
    );
  }
  return [...new Set(ids)].map((id) => byId.get(id)!);
}

async function applyTechnique(
  technique: OptimizationTechnique,
  prefix: Built,
  techniques: string[],
  ctx: Omit<TechniqueContext, 'analysis'>,
): Promise<Built> {
  const analysis = prefix.analysis ?? analyzeModel(decodeModel(prefix.model!));
  const check = technique.applicability(analysis, ctx.target);
  if (!check.ok) return { techniques, notes: [...prefix.notes], state: 'not-applicable', reason: check.reason };
  try {
    const result = await technique.apply(prefix.model!, { ...ctx, analysis });
    if (!result.applied)
      return { techniques, notes: [...prefix.notes], state: 'not-applicable', reason: result.reason };
    const model = result.model;
    let nextAnalysis: ModelAnalysis | undefined;
    try {
      nextAnalysis = model === prefix.model ? analysis : analyzeModel(decodeModel(model));
    } catch (err) {
      return {
        techniques,
        notes: [...prefix.notes],
        state: 'failed',
        reason: `the transformed model does not decode: ${(err as Error).message}`,
      };
    }
    return {
      techniques,
      model,
      analysis: nextAnalysis,
      sessionOptions: result.sessionOptions ?? prefix.sessionOptions,
      notes: [...prefix.notes, ...result.notes.map((n) => (techniques.length > 1 ? `${technique.id}: ${n}` : n))],
      state: 'built',
    };
  } catch (err) {
    return {
      techniques,
      notes: [...prefix.notes],
      state: 'failed',
      reason: `${technique.id} failed: ${(err as Error).message}`,
    };
  }
}

function rowsOf(feeds: Feeds): number {
  for (const f of Object.values(feeds)) if (f.dims.length > 0) return f.dims[0]!;
  return 1;
}

/** The agreement set: calibration samples when given, else one batch of N rows, else N single runs. */
function agreementFeeds(
  analysis: ModelAnalysis,
  feedOpts: { dims?: Record<string, number>; fixed?: Record<string, FixedInputJson> },
  batchDynamic: boolean,
  calibration: CalibrationSample[] | undefined,
  samples?: number,
): Feeds[] {
  if (calibration?.length) {
    return calibration.slice(0, samples ?? 64).map((sample, i) => {
      const generated = generateFeeds(analysis.inputs, {
        ...feedOpts,
        batch: sample[Object.keys(sample)[0] ?? '']?.dims[0] ?? 1,
        seed: 100 + i,
      });
      for (const [name, t] of Object.entries(sample)) generated[name] = { type: 'float32', dims: t.dims, data: t.data };
      return generated;
    });
  }
  if (batchDynamic) {
    // Batches of at most 32 rows, so that comparing many rows never needs a large activation buffer.
    const rows = samples ?? 256;
    return Array.from({ length: Math.ceil(rows / 32) }, (_, i) =>
      generateFeeds(analysis.inputs, { ...feedOpts, batch: Math.min(32, rows - 32 * i), seed: 3 + i }),
    );
  }
  return Array.from({ length: samples ?? 64 }, (_, i) =>
    generateFeeds(analysis.inputs, { ...feedOpts, batch: 1, seed: 100 + i }),
  );
}
