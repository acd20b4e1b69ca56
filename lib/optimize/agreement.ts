/**
 * How closely a candidate's outputs follow the original's on the same inputs: the largest absolute
 * difference, the cosine similarity (per output; the worst output counts) and, for outputs shaped like
 * class scores ([rows, classes ≥ 2]), the fraction of rows whose arg-max class is the same.
 */

import type { OutputsWire } from './measureProtocol';
import { feedsFromWire } from './sampleInputs';
import type { AgreementFigures } from './types';

export interface AgreementResult {
  figures: AgreementFigures;
  /** Set when the outputs cannot be compared at all (missing output, other shape, NaN). */
  problem?: string;
}

interface Accumulator {
  dot: number;
  normA: number;
  normB: number;
  maxAbs: number;
  rows: number;
  agreeingRows: number;
  classScores: boolean;
}

/** `classifier`: 'auto' treats rank-2 float outputs with ≥2 columns as class scores. */
export function compareOutputs(
  reference: OutputsWire,
  candidate: OutputsWire,
  samples: number,
  classifier: 'auto' | boolean = 'auto',
): AgreementResult {
  const acc = new Map<string, Accumulator>();
  let problem: string | undefined;
  if (candidate.runs.length !== reference.runs.length) {
    problem = `the candidate answered ${candidate.runs.length} of ${reference.runs.length} runs`;
  }
  reference.runs.forEach((refWire, i) => {
    const ref = feedsFromWire(refWire);
    const cand = feedsFromWire(candidate.runs[i] ?? {});
    for (const [name, r] of Object.entries(ref)) {
      const c = cand[name];
      if (!c) {
        problem ??= `the candidate has no output "${name}"`;
        continue;
      }
      if (c.data.length !== r.data.length || c.dims.join(',') !== r.dims.join(',')) {
        problem ??= `output "${name}" has shape [${c.dims.join(', ')}], the original's is [${r.dims.join(', ')}]`;
        continue;
      }
      const isFloat = r.type === 'float32' || r.type === 'float64';
      const classScores =
        classifier === true
          ? r.dims.length >= 2
          : classifier === 'auto' && isFloat && r.dims.length === 2 && r.dims[1]! >= 2;
      let a = acc.get(name);
      if (!a) acc.set(name, (a = { dot: 0, normA: 0, normB: 0, maxAbs: 0, rows: 0, agreeingRows: 0, classScores }));
      const x = r.data;
      const y = c.data;
      for (let k = 0; k < x.length; k++) {
        const xv = Number(x[k]);
        const yv = Number(y[k]);
        if (Number.isNaN(yv) && !Number.isNaN(xv)) problem ??= `output "${name}" contains NaN`;
        a.dot += xv * yv;
        a.normA += xv * xv;
        a.normB += yv * yv;
        const d = Math.abs(xv - yv);
        if (d > a.maxAbs || Number.isNaN(d)) a.maxAbs = d;
      }
      if (classScores) {
        const cols = r.dims[r.dims.length - 1]!;
        const rows = x.length / cols;
        for (let row = 0; row < rows; row++) {
          a.rows++;
          if (argMax(x, row * cols, cols) === argMax(y, row * cols, cols)) a.agreeingRows++;
        }
      }
    }
  });

  let maxAbsError = 0;
  let cosine = 1;
  let top1: number | null = null;
  for (const a of acc.values()) {
    maxAbsError = Number.isNaN(a.maxAbs) ? NaN : Math.max(maxAbsError, a.maxAbs);
    const c =
      a.normA === 0 && a.normB === 0 ? 1 : a.normA === 0 || a.normB === 0 ? 0 : a.dot / Math.sqrt(a.normA * a.normB);
    cosine = Math.min(cosine, Math.min(1, c));
    if (a.classScores && a.rows > 0) top1 = Math.min(top1 ?? 1, a.agreeingRows / a.rows);
  }
  if (Number.isNaN(maxAbsError)) problem ??= 'the outputs contain NaN';
  if (acc.size === 0 && !problem) problem = 'the model has no numeric tensor output to compare';
  return { figures: { maxAbsError, cosine, top1, samples }, problem };
}

function argMax(data: ArrayLike<number | bigint>, offset: number, n: number): number {
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
