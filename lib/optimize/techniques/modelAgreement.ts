/**
 * Running a model and its transformed version on the same batches in onnxruntime-node and measuring how far
 * their outputs drift, by the one definition of agreement (../agreement.ts: cosine similarity, max abs error,
 * top-1 agreement for class scores). Shared by int8-static, prune-magnitude and distill-mlp.
 */
import * as ort from 'onnxruntime-node';
import { compareOutputRuns, type NamedTensors } from '../agreement';
import type { Feeds } from '../technique';

export type OrtFeeds = Record<string, ort.Tensor>;
export type OrtOutputs = Record<string, ort.Tensor>;

export interface Agreement {
  /** Outputs compared, in the original's order. */
  outputs: string[];
  /** Worst output's cosine similarity over all batches. */
  cosine: number;
  maxAbsError: number;
  /** Worst class-score output's top-1 agreement; undefined when no output holds class scores. */
  top1?: number;
  /** Rows compared for top-1. */
  rows: number;
}

/** One session, all batches, released afterwards. */
export async function runBatches(
  model: Uint8Array | string,
  batches: OrtFeeds[],
  options: ort.InferenceSession.SessionOptions = {},
): Promise<OrtOutputs[]> {
  const session = await ort.InferenceSession.create(model as Uint8Array, { logSeverityLevel: 3, ...options });
  try {
    const out: OrtOutputs[] = [];
    for (const feeds of batches) out.push((await session.run(feeds)) as OrtOutputs);
    return out;
  } finally {
    await session.release();
  }
}

export function toOrtTensors(feeds: Feeds): OrtFeeds {
  const out: OrtFeeds = {};
  for (const [name, f] of Object.entries(feeds)) out[name] = new ort.Tensor(f.type, f.data as never, f.dims);
  return out;
}

/** Outputs whose elements read as numbers (float16 arrives as raw bits, strings are not numbers). */
function comparable(outputs: OrtOutputs): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(outputs))
    if (t.type !== 'string' && t.type !== 'float16') out[name] = t as NamedTensors[string];
  return out;
}

/**
 * Compares outputs batch by batch; throws when the candidate's outputs differ in name, dims or element type
 * (a transform must keep the model's interface).
 */
export function agreementOf(original: OrtOutputs[], candidate: OrtOutputs[]): Agreement {
  original.forEach((x, b) => {
    for (const [name, xt] of Object.entries(x)) {
      const yt = candidate[b]?.[name];
      if (!yt) throw new Error(`the candidate has no output "${name}"`);
      if (xt.type !== yt.type)
        throw new Error(`output "${name}" is ${yt.type} in the candidate, ${xt.type} in the original`);
    }
  });
  const c = compareOutputRuns(original.map(comparable), candidate.map(comparable));
  if (c.mismatch) throw new Error(c.mismatch);
  return {
    outputs: c.outputs,
    cosine: c.cosine,
    maxAbsError: c.maxAbsError,
    top1: c.top1 ?? undefined,
    rows: c.top1Rows,
  };
}

/** Runs both models on the batches and compares them. */
export async function measureAgreement(
  original: Uint8Array,
  candidate: Uint8Array,
  batches: OrtFeeds[],
): Promise<Agreement> {
  const a = await runBatches(original, batches);
  const b = await runBatches(candidate, batches);
  return agreementOf(a, b);
}

export function describeAgreement(a: Agreement): string {
  const top1 = a.top1 !== undefined ? `, top-1 agreement ${(100 * a.top1).toFixed(1)}% of ${a.rows} rows` : '';
  return `cosine ${a.cosine.toFixed(5)}, max abs error ${a.maxAbsError.toPrecision(3)}${top1}`;
}
