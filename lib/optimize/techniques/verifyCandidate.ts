/**
 * The check every technique runs before it hands back a model: the candidate loads in onnxruntime-node, runs
 * on the same deterministic inputs as the original, has the same outputs (names, shapes) and agrees with it
 * closely enough to report (cosine similarity, max abs error).
 */
import * as ort from 'onnxruntime-node';
import type { TensorSummary } from '../../onnx/analyze';
import { sampleInputs } from '../sampleInputs';
import type { Feeds } from '../technique';

export interface OutputAgreement {
  /** Cosine similarity of all float outputs, concatenated, computed in float64. */
  cosine: number;
  maxAbsError: number;
  /** Output names compared, in the original's order. */
  outputs: string[];
}

export type CandidateCheck =
  | { ok: true; agreement: OutputAgreement; feeds: Record<string, ort.Tensor> }
  | { ok: false; reason: string };

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, intraOpNumThreads: 1 };

export async function runOnce(
  model: Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model, SESSION_OPTIONS);
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

/** Cosine similarity of two equally long numeric sequences (1 when both are all zero). */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosineSimilarity: lengths differ (${a.length} vs ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}

/** Compares two sets of outputs: same names and dims, then cosine and max abs error over the float ones. */
export function compareOutputs(
  original: Record<string, ort.Tensor>,
  candidate: Record<string, ort.Tensor>,
): OutputAgreement {
  const names = Object.keys(original);
  const a: number[] = [];
  const b: number[] = [];
  let maxAbsError = 0;
  for (const name of names) {
    const x = original[name];
    const y = candidate[name];
    if (!y) throw new Error(`the candidate has no output '${name}'`);
    if (x.dims.join(',') !== y.dims.join(','))
      throw new Error(`output '${name}' has dims [${y.dims}] in the candidate, [${x.dims}] in the original`);
    if (x.type !== y.type) throw new Error(`output '${name}' is ${y.type} in the candidate, ${x.type} in the original`);
    if (x.type !== 'float32' && x.type !== 'float64') continue;
    const xd = x.data as Float32Array;
    const yd = y.data as Float32Array;
    for (let i = 0; i < xd.length; i++) {
      a.push(xd[i]);
      b.push(yd[i]);
      const d = Math.abs(xd[i] - yd[i]);
      if (!(d <= maxAbsError)) maxAbsError = Number.isNaN(d) ? NaN : d;
    }
  }
  return { cosine: cosineSimilarity(a, b), maxAbsError, outputs: names };
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
    feeds = given
      ? Object.fromEntries(
          Object.entries(given).map(([name, f]) => [name, new ort.Tensor(f.type, f.data as never, f.dims)]),
        )
      : sampleInputs(inputs, 1);
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
