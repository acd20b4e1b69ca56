/**
 * Stage 2, optimize: run the optimization engine on the uploaded model — every registered technique
 * and sensible combinations, each candidate measured against the original on the same inputs — store
 * each candidate's model in the object store (by key, never in a payload) and the table in Postgres,
 * and offer the measured candidates as the plans. Waiting for the approval happens in the workflow;
 * `recordOptimizationChoice` then records what was chosen and hands the container stage its model.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { getPool } from '../../lib/db/pool';
import type { EngineProgress, EngineResult } from '../../lib/optimize/engine';
import { runOptimizationEngineInChild } from '../../lib/optimize/engineProcess';
import { OptimizationNotPossibleError } from '../../lib/optimize/errors';
import { benchmarkReportFor, plansFromTable } from '../../lib/optimize/plans';
import { recordOptimizationTable, recordOptimizationChoice as storeChoice } from '../../lib/optimize/results';
import { objectKeys } from '../../lib/store/objectStore';
import type {
  ApprovalSource,
  BenchmarkReport,
  ModelSummary,
  OptimizationTable,
  OptimizeSettings,
  PlanOption,
  ServingBatching,
  ServingSessionOptions,
} from '../../workflows/types';
import { activityDeps } from '../deps';
import { withScratchDir } from '../scratch';

export interface ModelObject {
  objectKey: string;
  sha256: string;
  /** Session options the image's ferry-models.json gives the server for this model. */
  sessionOptions?: ServingSessionOptions;
  /** Dynamic batching the image's ferry-models.json turns on for this model (measured safe and worthwhile). */
  batching?: ServingBatching;
}

export interface MeasuredCandidates {
  table: OptimizationTable;
  plans: PlanOption[];
  defaultPlan: string;
}

export async function measureOptimizationCandidates(input: {
  modelVersionId: number;
  original: ModelObject;
  summary: ModelSummary;
  settings?: OptimizeSettings;
}): Promise<MeasuredCandidates> {
  const { store, config } = activityDeps();
  return withScratchDir('optimize', async (dir) => {
    const src = path.join(dir, 'original.onnx');
    heartbeat({ step: 'downloading model' });
    await store.getFile(input.original.objectKey, src);

    // Heartbeat on a timer as well as on progress, so a long transform or measurement never looks like a dead worker.
    let last: EngineProgress = { phase: 'analyze', fraction: 0 };
    const beat = () => heartbeat({ step: describe(last), percent: Math.round(100 * last.fraction) });
    const timer = setInterval(beat, 2000);
    let lastBeat = 0;
    const beatSoon = () => {
      if (Date.now() - lastBeat > 500) {
        lastBeat = Date.now();
        beat();
      }
    };
    let result: EngineResult;
    try {
      const settings = input.settings ?? {};
      // In a child process: transforms and onnxruntime runs are synchronous and would stall this worker's event loop.
      result = await runOptimizationEngineInChild(
        src,
        {
          workDir: path.join(dir, 'candidates'),
          techniques: settings.techniques,
          budget: settings.budget,
          // The worker optimizes on the machine the local target serves from; images stay portable unless told otherwise.
          target: { threads: os.availableParallelism(), ...settings.target },
          measure: settings.measureMs ? { measureMs: settings.measureMs } : undefined,
        },
        (p) => {
          last = p;
          beatSoon();
        },
        undefined,
        Context.current().cancellationSignal,
      );
    } catch (err) {
      // A model that cannot run on generated inputs, or a bad setting, fails the same way on every retry.
      if (err instanceof OptimizationNotPossibleError)
        throw ApplicationFailure.nonRetryable(err.message, 'OptimizationNotPossible', { code: err.code });
      throw err;
    } finally {
      clearInterval(timer);
    }

    heartbeat({ step: 'storing candidates', percent: 100 });
    const table = result.table;
    for (const c of result.candidates) {
      const row = table.candidates.find((x) => x.id === c.id)!;
      if (c.id === 'original') {
        row.artifact = { objectKey: input.original.objectKey, sha256: input.original.sha256 };
      } else if (c.modelPath) {
        const bytes = await readFile(c.modelPath);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const objectKey = objectKeys.model(sha256);
        if (!(await store.exists(objectKey))) await store.putBytes(objectKey, bytes);
        row.artifact = { objectKey, sha256 };
      }
      heartbeat({ step: `stored ${c.id}`, percent: 100 });
    }
    await recordOptimizationTable(getPool(config.postgres.url), input.modelVersionId, table);
    return { table, plans: plansFromTable(table, input.summary), defaultPlan: table.best };
  });
}

/** Records the choice and returns the chosen candidate's model (with its serving settings) and benchmark. */
export async function recordOptimizationChoice(input: {
  modelVersionId: number;
  table: OptimizationTable;
  plan: string;
  source: ApprovalSource;
  approvedBy?: string;
}): Promise<{ model: ModelObject; benchmark: BenchmarkReport }> {
  const candidate = input.table.candidates.find((c) => c.id === input.plan);
  if (candidate?.state !== 'measured' || !candidate.artifact) {
    throw ApplicationFailure.nonRetryable(
      `plan "${input.plan}" is not a measured candidate of this model`,
      'UnknownPlan',
    );
  }
  const { config } = activityDeps();
  await storeChoice(getPool(config.postgres.url), {
    modelVersionId: input.modelVersionId,
    candidate: candidate.id,
    source: input.source,
    approvedBy: input.approvedBy,
  });
  return {
    model: { ...candidate.artifact, sessionOptions: candidate.sessionOptions, batching: candidate.batching },
    benchmark: benchmarkReportFor(input.table, candidate.id),
  };
}

function describe(p: EngineProgress): string {
  const what =
    p.phase === 'transform'
      ? 'building'
      : p.phase === 'measure'
        ? 'measuring'
        : p.phase === 'tune'
          ? 'tuning'
          : p.phase;
  return [what, p.candidate, p.detail && p.detail !== 'measuring' ? `(${p.detail})` : ''].filter(Boolean).join(' ');
}
