/**
 * The check every technique runs before it hands back a model: the candidate loads in onnxruntime-node, runs
 * on the same deterministic inputs as the original, has the same outputs (names, shapes, element types) and
 * agrees with it closely enough to report (cosine similarity, max abs error; defined in ../agreement.ts).
 */
import type * as ort from 'onnxruntime-node';
import type { TensorSummary } from '../../onnx/analyze';
import { sampleInputs } from '../sampleInputs';
import type { Feeds } from '../technique';
import { agreementOf, runBatches, toOrtTensors } from './modelAgreement';

export interface OutputAgreement {
  /** Worst output's cosine similarity. */
  cosine: number;
  maxAbsError: number;
  /** Output names compared, in the original's order. */
  outputs: string[];
}

export type CandidateCheck =
  | { ok: true; agreement: OutputAgreement; feeds: Record<string, ort.Tensor> }
  | { ok: false; reason: string };

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, intraOpNumThreads: 1 };

async function runOnce(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const [outputs] = await runBatches(model, [feeds], SESSION_OPTIONS);
  return outputs!;
}

/** Compares one run's outputs: same names, dims and types, then cosine and max abs error. */
export function compareOutputs(
  original: Record<string, ort.Tensor>,
  candidate: Record<string, ort.Tensor>,
): OutputAgreement {
  const { cosine, maxAbsError, outputs } = agreementOf([original], [candidate]);
  return { cosine, maxAbsError, outputs };
}

/**
 * Loads and runs the candidate next to the original on the engine's sample inputs when given, else on
 * deterministic inputs made from the model's input specs (symbolic dims other than the first are 1).
 * Never throws: a failure is a reason a technique can return.
 */
export async function checkCandidate(
  original: Uint8Array,
  candidate: Uint8Array,
  inputs: TensorSummary[],
  given?: Feeds,
): Promise<CandidateCheck> {
  let feeds: Record<string, ort.Tensor>;
  try {
    feeds = given ? toOrtTensors(given) : sampleInputs(inputs, 1);
  } catch (err) {
    return { ok: false, reason: `cannot make sample inputs to verify the result: ${(err as Error).message}` };
  }
  let candidateOut: Record<string, ort.Tensor>;
  try {
    candidateOut = await runOnce(candidate, feeds);
  } catch (err) {
    return { ok: false, reason: `onnxruntime could not load or run the transformed model: ${(err as Error).message}` };
  }
  try {
    const originalOut = await runOnce(original, feeds);
    const agreement = compareOutputs(originalOut, candidateOut);
    if (Number.isNaN(agreement.maxAbsError))
      return { ok: false, reason: 'the transformed model produced NaN where the original did not' };
    return { ok: true, agreement, feeds };
  } catch (err) {
    return {
      ok: false,
      reason: `the transformed model does not match the original's outputs: ${(err as Error).message}`,
    };
  }
}
