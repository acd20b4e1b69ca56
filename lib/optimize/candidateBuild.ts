/**
 * Building candidates: each planned list of techniques applied in order to the original, in this process
 * (transforms are TypeScript or onnxruntime passes). A combination reuses the build of its first steps; one
 * whose first steps did not apply is not a candidate of its own, and one whose last step re-expands what the
 * first shrank is not applicable.
 */
import { analyzeModel, type ModelAnalysis } from '../onnx/analyze';
import { decodeModel } from '../onnx/model';
import { candidateId } from './candidatePlan';
import type { StepProgress } from './progress';
import type { OptimizationTechnique, TechniqueContext } from './technique';
import type { ServingSessionOptions } from './types';

export interface Built {
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

/** What every technique of a run is given, but its own options and progress. */
export type SharedTechniqueContext = Omit<TechniqueContext, 'analysis' | 'options' | 'onProgress'>;

export class CandidateBuilder {
  private readonly built = new Map<string, Built>();
  private readonly byId: Map<string, OptimizationTechnique>;

  constructor(
    private readonly run: {
      model: Uint8Array;
      analysis: ModelAnalysis;
      techniques: OptimizationTechnique[];
      context: SharedTechniqueContext;
      techniqueOptions?: Record<string, Record<string, unknown>>;
      steps: StepProgress;
    },
  ) {
    this.byId = new Map(run.techniques.map((t) => [t.id, t]));
  }

  /** The original model as the first step's input. */
  original(): Built {
    return { techniques: [], model: this.run.model, analysis: this.run.analysis, notes: [], state: 'built' };
  }

  /** A candidate built earlier in this run, by id. */
  get(id: string): Built | undefined {
    return this.built.get(id);
  }

  /** `report`: this build is a planned step of its own (combinations also build their prefixes). */
  async build(techniques: string[], report: boolean): Promise<Built> {
    const key = candidateId(techniques);
    const cached = this.built.get(key);
    if (cached) return cached;
    const prefix = techniques.length === 1 ? this.original() : await this.build(techniques.slice(0, -1), false);
    const id = techniques[techniques.length - 1]!;
    let result: Built;
    if (prefix.state !== 'built') {
      // A combination whose first steps did not apply is not a candidate of its own.
      result = { techniques, notes: [], state: 'not-applicable', reason: prefix.reason, skipped: true };
    } else {
      result = await this.apply(this.byId.get(id)!, prefix, techniques, 'transform');
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
    this.built.set(key, result);
    if (report) {
      this.run.steps.next();
      this.run.steps.report('transform', key, result.state);
    }
    return result;
  }

  /** One more step on a built candidate, reporting its progress in `phase` (session tuning: 'tune'). */
  apply(
    technique: OptimizationTechnique,
    prefix: Built,
    techniques: string[],
    phase: 'transform' | 'tune',
  ): Promise<Built> {
    const key = candidateId(techniques);
    return applyTechnique(technique, prefix, techniques, {
      ...this.run.context,
      options: this.run.techniqueOptions?.[technique.id],
      onProgress: (f, detail) => this.run.steps.report(phase, key, detail, f),
    });
  }
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
