/**
 * Stage 2, optimize: propose plans, apply the chosen one, benchmark it against the original.
 * Waiting for the approval happens in the workflow, between proposing and applying.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { benchmarkAgainstOriginal } from '../../lib/optimize/benchmark';
import { optimizeGraphOffline } from '../../lib/optimize/graphOptimize';
import { GRAPH_OPTIMIZED_PLAN, ORIGINAL_PLAN, proposePlans } from '../../lib/optimize/plans';
import { objectKeys } from '../../lib/store/objectStore';
import type { BenchmarkReport, ModelSummary, PlanOption } from '../../workflows/types';
import { activityDeps } from '../deps';
import { withScratchDir } from '../scratch';

export interface ModelObject {
  objectKey: string;
  sha256: string;
}

export async function proposeOptimizationPlans(input: { summary: ModelSummary }): Promise<{ plans: PlanOption[]; defaultPlan: string }> {
  return proposePlans(input.summary);
}

export async function applyOptimizationPlan(input: {
  modelVersionId: number;
  original: ModelObject;
  plan: string;
}): Promise<ModelObject> {
  if (input.plan === ORIGINAL_PLAN) return input.original;
  if (input.plan !== GRAPH_OPTIMIZED_PLAN) {
    throw ApplicationFailure.nonRetryable(`no optimizer implements plan "${input.plan}"`, 'UnknownPlan');
  }
  const { store } = activityDeps();
  return withScratchDir('optimize', async (dir) => {
    const src = path.join(dir, 'original.onnx');
    const out = path.join(dir, 'optimized.onnx');
    heartbeat({ step: 'downloading' });
    await store.getFile(input.original.objectKey, src);
    heartbeat({ step: 'optimizing graph' });
    await optimizeGraphOffline(src, out);
    const bytes = await readFile(out);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const objectKey = objectKeys.model(sha256);
    if (!(await activityDeps().store.exists(objectKey))) await store.putBytes(objectKey, bytes);
    return { objectKey, sha256 };
  });
}

export async function benchmarkOptimizedModel(input: {
  modelVersionId: number;
  plan: string;
  original: ModelObject;
  candidate: ModelObject;
  summary: ModelSummary;
}): Promise<BenchmarkReport> {
  const { store, repo } = activityDeps();
  return withScratchDir('bench', async (dir) => {
    const originalPath = path.join(dir, 'original.onnx');
    const candidatePath = path.join(dir, 'candidate.onnx');
    await store.getFile(input.original.objectKey, originalPath);
    await store.getFile(input.candidate.objectKey, candidatePath);
    let lastBeat = 0;
    const report = await benchmarkAgainstOriginal(input.plan, originalPath, candidatePath, input.summary.inputs, {
      onProgress: (done, total) => {
        if (Date.now() - lastBeat > 1000 || done === total) {
          lastBeat = Date.now();
          heartbeat({ step: 'benchmarking', percent: Math.round((100 * done) / total) });
        }
      },
    });
    await repo.recordOptimizationResult({
      modelVersionId: input.modelVersionId,
      plan: input.plan,
      objectKey: input.candidate.objectKey,
      sha256: input.candidate.sha256,
      benchmark: report,
    });
    return report;
  });
}
