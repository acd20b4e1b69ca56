/**
 * Output agreement: how closely a candidate's outputs follow the original's on the same inputs. This is the
 * one definition; the engine's table and accuracy budget (budget.ts), the techniques' own checks
 * (techniques/modelAgreement.ts, techniques/verifyCandidate.ts), the row-independence check behind dynamic
 * batching (rowIndependence.ts) and the benchmarks all compute it here.
 *
 * - Cosine similarity, per output over every run, summed in float64: dot(x, y) / (|x| |y|); 1 when both
 *   are all zero, 0 when only one is, at most 1 (rounding). The worst output counts, so a small output that
 *   drifts is not hidden behind a large one that does not.
 * - Max abs error: the largest |x − y| over every element of every output; NaN once any difference is NaN.
 * - Top-1 agreement, for outputs that hold class scores ([rows, classes ≥ 2] floats unless the caller says
 *   otherwise): the share of rows whose arg-max (the first maximum) is the same; the worst output counts;
 *   null when no output holds class scores.
 *
 * Every output whose elements read as numbers is compared (integer and bool outputs too: a changed label is a
 * disagreement); outputs must keep their names and shapes, else the two cannot be compared at all.
 */
import type { OutputsWire } from './measureProtocol';
import { feedsFromWire } from './sampleInputs';
import type { AgreementFigures } from './types';

/** A tensor as the comparison reads it: onnxruntime's Tensor and the engine's FeedTensor both are one. */
export interface ComparedTensor {
  type: string;
  dims: readonly number[];
  data: ArrayLike<number | bigint>;
}
export type NamedTensors = Record<string, ComparedTensor>;

/** Which outputs hold class scores: 'auto' = float [rows, classes ≥ 2]; true = every output of rank ≥ 2. */
export type Classifier = 'auto' | boolean;

/** Running sums over element pairs (reference x, candidate y): cosine and max abs error of what was added. */
export class ElementAgreement {
  private dot = 0;
  private normA = 0;
  private normB = 0;
  maxAbsError = 0;
  /** Largest |x|: the scale a max abs error is read against. */
  maxAbsReference = 0;

  /** Adds equally long sequences; returns true when y holds NaN where x does not. */
  add(x: ArrayLike<number | bigint>, y: ArrayLike<number | bigint>): boolean {
    let newNaN = false;
    for (let k = 0; k < x.length; k++) {
      const xv = Number(x[k]);
      const yv = Number(y[k]);
      if (Number.isNaN(yv) && !Number.isNaN(xv)) newNaN = true;
      this.dot += xv * yv;
      this.normA += xv * xv;
      this.normB += yv * yv;
      const d = Math.abs(xv - yv);
      if (d > this.maxAbsError || Number.isNaN(d)) this.maxAbsError = d;
      if (Math.abs(xv) > this.maxAbsReference) this.maxAbsReference = Math.abs(xv);
    }
    return newNaN;
  }

  get cosine(): number {
    const { dot, normA, normB } = this;
    if (normA === 0 && normB === 0) return 1;
    if (normA === 0 || normB === 0) return 0;
    return Math.min(1, dot / Math.sqrt(normA * normB));
  }
}

/** Cosine similarity of two equally long numeric sequences, as defined above. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosineSimilarity: lengths differ (${a.length} vs ${b.length})`);
  const e = new ElementAgreement();
  e.add(a, b);
  return e.cosine;
}

export interface OutputComparison {
  maxAbsError: number;
  /** Worst output. */
  cosine: number;
  /** Worst class-score output; null when none holds class scores. */
  top1: number | null;
  /** Rows behind `top1` (those of the output that sets it); 0 when top1 is null. */
  top1Rows: number;
  /** Outputs compared, in the original's order. */
  outputs: string[];
  /** The first reason the figures cannot be trusted: a `mismatch`, NaN, or nothing to compare. */
  problem?: string;
  /** The first reason the outputs cannot be compared at all (a run, an output or a shape missing or different). */
  mismatch?: string;
}

interface PerOutput {
  elements: ElementAgreement;
  classScores: boolean;
  rows: number;
  agreeingRows: number;
}

/** Compares the candidate's outputs with the reference's, run by run (the same inputs in the same order). */
export function compareOutputRuns(
  reference: NamedTensors[],
  candidate: NamedTensors[],
  classifier: Classifier = 'auto',
): OutputComparison {
  const per = new Map<string, PerOutput>();
  let problem: string | undefined;
  let mismatch: string | undefined;
  const mismatched = (why: string) => {
    mismatch ??= why;
    problem ??= why;
  };
  if (candidate.length !== reference.length)
    mismatched(`the candidate answered ${candidate.length} of ${reference.length} runs`);
  reference.forEach((ref, i) => {
    const cand = candidate[i] ?? {};
    for (const [name, r] of Object.entries(ref)) {
      const c = cand[name];
      if (!c) {
        mismatched(`the candidate has no output "${name}"`);
        continue;
      }
      if (c.data.length !== r.data.length || c.dims.join(',') !== r.dims.join(',')) {
        mismatched(`output "${name}" has shape [${c.dims.join(', ')}], the original's is [${r.dims.join(', ')}]`);
        continue;
      }
      const classScores = isClassScores(r, classifier);
      let o = per.get(name);
      if (!o) {
        o = { elements: new ElementAgreement(), classScores, rows: 0, agreeingRows: 0 };
        per.set(name, o);
      }
      if (o.elements.add(r.data, c.data)) problem ??= `output "${name}" contains NaN`;
      if (classScores) {
        const cols = r.dims[r.dims.length - 1]!;
        const rows = r.data.length / cols;
        for (let row = 0; row < rows; row++) {
          o.rows++;
          if (argMax(r.data, row * cols, cols) === argMax(c.data, row * cols, cols)) o.agreeingRows++;
        }
      }
    }
  });

  let maxAbsError = 0;
  let cosine = 1;
  let top1: number | null = null;
  let top1Rows = 0;
  for (const o of per.values()) {
    maxAbsError = Number.isNaN(o.elements.maxAbsError) ? NaN : Math.max(maxAbsError, o.elements.maxAbsError);
    cosine = Math.min(cosine, o.elements.cosine);
    if (o.classScores && o.rows > 0 && (top1 === null || o.agreeingRows / o.rows < top1)) {
      top1 = o.agreeingRows / o.rows;
      top1Rows = o.rows;
    }
  }
  if (Number.isNaN(maxAbsError)) problem ??= 'the outputs contain NaN';
  if (per.size === 0) problem ??= 'the model has no numeric tensor output to compare';
  return { maxAbsError, cosine, top1, top1Rows, outputs: [...per.keys()], problem, mismatch };
}

function isClassScores(t: ComparedTensor, classifier: Classifier): boolean {
  if (classifier === true) return t.dims.length >= 2;
  const isFloat = t.type === 'float32' || t.type === 'float64';
  return classifier === 'auto' && isFloat && t.dims.length === 2 && t.dims[1]! >= 2;
}

/** Index of the first maximum; NaN never wins. */
export function argMax(data: ArrayLike<number | bigint>, offset: number, n: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = Number(data[offset + i]);
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

export interface AgreementResult {
  figures: AgreementFigures;
  /** Set when the outputs cannot be compared at all (missing output, other shape, NaN). */
  problem?: string;
}

/** The engine's comparison: the measuring child's outputs on the agreement inputs, `samples` rows of them. */
export function compareOutputs(
  reference: OutputsWire,
  candidate: OutputsWire,
  samples: number,
  classifier: Classifier = 'auto',
): AgreementResult {
  const c = compareOutputRuns(reference.runs.map(feedsFromWire), candidate.runs.map(feedsFromWire), classifier);
  return { figures: { maxAbsError: c.maxAbsError, cosine: c.cosine, top1: c.top1, samples }, problem: c.problem };
}
