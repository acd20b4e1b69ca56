/**
 * graph-optimize: onnxruntime's own graph optimizer run once, offline, and its result saved with
 * `optimizedModelFilePath` — constant folding, redundant-node elimination and operator fusion
 * (MatMul+Add → Gemm, Conv+BatchNorm, Conv+Relu → FusedConv, attention / GELU / LayerNorm fusions,
 * QDQ pairs → QLinear ops) done before the image is built instead of at every replica start.
 *
 * Level: 'extended' unless the target is the machine that optimizes (then 'all'). 'all' adds layout
 * transforms (NCHWc) chosen for this CPU's instruction set; a model saved with them is only known to
 * run well, or at all, where it was optimized. 'extended' uses onnxruntime's CPU contrib ops, which
 * every CPU build of the same onnxruntime runs — and images carry that onnxruntime.
 * Option `level` ('basic' | 'extended' | 'all') overrides the choice; 'all' is still refused for a
 * target that is not this machine.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { analyzeModel, type ModelAnalysis } from '../../onnx/analyze';
import { decodeModel } from '../../onnx/model';
import { type OfflineLevel, optimizeGraphOffline } from '../graphOptimize';
import type { OptimizationTechnique, TargetSpec, TechniqueContext, TechniqueResult } from '../technique';

export const GRAPH_OPTIMIZE_ID = 'graph-optimize';

const FUSABLE = [
  'MatMul',
  'Gemm',
  'Conv',
  'Add',
  'Mul',
  'Relu',
  'BatchNormalization',
  'LayerNormalization',
  'Softmax',
  'Erf',
  'Sigmoid',
  'Transpose',
  'Reshape',
  'Identity',
  'Cast',
  'Constant',
];

export function graphOptimizeLevel(target: TargetSpec, requested?: unknown): OfflineLevel {
  if (requested !== undefined) {
    if (requested !== 'basic' && requested !== 'extended' && requested !== 'all') {
      throw new Error(`graph-optimize level must be basic, extended or all, got ${String(requested)}`);
    }
    if (requested === 'all' && !target.sameMachine) {
      throw new Error(
        "graph-optimize level 'all' is hardware-specific: only for a target that is the machine optimizing it",
      );
    }
    return requested;
  }
  return target.sameMachine ? 'all' : 'extended';
}

export const graphOptimize: OptimizationTechnique = {
  id: GRAPH_OPTIMIZE_ID,
  title: 'Offline graph optimization',
  description:
    "onnxruntime folds constants, removes redundant nodes and fuses operators once, ahead of time, and the image ships the result ('extended' level, portable across CPUs; 'all' only when the image runs on the machine that optimized it).",

  expectedEffect(analysis: ModelAnalysis, target: TargetSpec): string {
    const fusable = FUSABLE.filter((op) => analysis.opHistogram[op]);
    const level = target.sameMachine ? 'all' : 'extended';
    return fusable.length
      ? `Same outputs within float rounding; faster replica start (the work is done once) and lower latency from fusing ${fusable.slice(0, 5).join(', ')} (level ${level}).`
      : `Same outputs; little to fold or fuse in this model, so expect a small gain at most (level ${level}).`;
  },

  applicability(analysis: ModelAnalysis, target: TargetSpec) {
    if (target.kind !== 'cpu')
      return {
        ok: false,
        reason: 'the saved levels are CPU execution-provider optimizations; a GPU target optimizes at load time',
      };
    if (analysis.externalDataFiles.length)
      return {
        ok: false,
        reason:
          'the model keeps weights in external data files, which onnxruntime does not re-save with an optimized model',
      };
    return { ok: true };
  },

  async apply(model: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    const check = this.applicability(ctx.analysis, ctx.target);
    if (!check.ok) return { applied: false, reason: check.reason };
    let level: OfflineLevel;
    try {
      level = graphOptimizeLevel(ctx.target, ctx.options?.level);
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    const dir = await mkdtemp(path.join(ctx.workDir, 'graph-optimize-'));
    try {
      const src = path.join(dir, 'in.onnx');
      const out = path.join(dir, 'out.onnx');
      await writeFile(src, model);
      ctx.onProgress?.(0.1, `onnxruntime optimizing at level ${level}`);
      try {
        await optimizeGraphOffline(src, out, level);
      } catch (err) {
        return { applied: false, reason: `onnxruntime could not optimize this model: ${(err as Error).message}` };
      }
      const optimized = new Uint8Array(await readFile(out));
      ctx.onProgress?.(1);
      const after = analyzeModel(decodeModel(optimized));
      const before = ctx.analysis;
      if (sameHistogram(before.opHistogram, after.opHistogram)) {
        return {
          applied: false,
          reason: `nothing to fold or fuse: onnxruntime's '${level}' level left the ${before.nodeCount} nodes as they were`,
        };
      }
      return {
        applied: true,
        model: optimized,
        notes: [
          `level ${level}: ${before.nodeCount} → ${after.nodeCount} nodes`,
          ...histogramChanges(before.opHistogram, after.opHistogram),
        ],
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

function sameHistogram(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a[k] ?? 0) !== (b[k] ?? 0)) return false;
  return true;
}

function histogramChanges(before: Record<string, number>, after: Record<string, number>): string[] {
  const gone: string[] = [];
  const added: string[] = [];
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d < 0) gone.push(`${k} ${d}`);
    if (d > 0) added.push(`${k} +${d}`);
  }
  return [gone.length ? `removed: ${gone.join(', ')}` : '', added.length ? `added: ${added.join(', ')}` : ''].filter(
    Boolean,
  );
}
