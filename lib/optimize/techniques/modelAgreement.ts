/**
 * Running a model and its transformed version on the same batches in onnxruntime-node and measuring how far
 * their outputs drift: max abs error, cosine similarity, and top-1 agreement for outputs that look like class
 * scores. Shared by int8-static, prune-magnitude and distill-mlp.
 */
import * as ort from 'onnxruntime-node';
import type { Feeds } from '../technique';

export type OrtFeeds = Record<string, ort.Tensor>;
export type OrtOutputs = Record<string, ort.Tensor>;

export interface Agreement {
  /** Float outputs compared, in the original's order. */
  outputs: string[];
  /** Cosine similarity of all float outputs of all batches, concatenated (float64 sums). */
  cosine: number;
  maxAbsError: number;
  /**
   * Share of rows whose argmax over the last axis is the same, for outputs with a last axis of at least 2
   * (class scores or probabilities); undefined when no output has one.
   */
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

function isFloat(t: ort.Tensor): boolean {
  return t.type === 'float32' || t.type === 'float64';
}

/** Compares outputs batch by batch; throws when names, dims or types differ. */
export function agreementOf(original: OrtOutputs[], candidate: OrtOutputs[]): Agreement {
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbsError = 0;
  let same = 0;
  let rows = 0;
  let outputs: string[] = [];
  original.forEach((x, b) => {
    const y = candidate[b];
    outputs = Object.keys(x).filter((n) => isFloat(x[n]));
    for (const name of Object.keys(x)) {
      const xt = x[name];
      const yt = y?.[name];
      if (!yt) throw new Error(`the candidate has no output '${name}'`);
      if (xt.dims.join(',') !== yt.dims.join(','))
        throw new Error(`output '${name}' has dims [${yt.dims}] in the candidate, [${xt.dims}] in the original`);
      if (xt.type !== yt.type)
        throw new Error(`output '${name}' is ${yt.type} in the candidate, ${xt.type} in the original`);
      if (!isFloat(xt)) continue;
      const xd = xt.data as Float32Array;
      const yd = yt.data as Float32Array;
      for (let i = 0; i < xd.length; i++) {
        dot += xd[i] * yd[i];
        na += xd[i] * xd[i];
        nb += yd[i] * yd[i];
        const d = Math.abs(xd[i] - yd[i]);
        if (!(d <= maxAbsError)) maxAbsError = Number.isNaN(d) ? NaN : d;
      }
      const classes = Number(xt.dims[xt.dims.length - 1] ?? 0);
      if (xt.dims.length >= 1 && classes >= 2) {
        for (let r = 0; r + classes <= xd.length; r += classes) {
          if (argmax(xd, r, classes) === argmax(yd, r, classes)) same++;
          rows++;
        }
      }
    }
  });
  const cosine = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  return { outputs, cosine, maxAbsError, top1: rows > 0 ? same / rows : undefined, rows };
}

function argmax(data: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[offset + i] > data[offset + best]) best = i;
  return best;
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
