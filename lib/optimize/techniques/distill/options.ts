/** Options of distill-mlp: what a caller may set, and reading them from a plan. */
import type { RawOptions } from '../adapter';
import type { DistillLoss } from './training';

export interface DistillOptions {
  /** Hidden widths of the student as a share of the teacher's (default 0.5). */
  widthFactor?: number;
  /** Explicit hidden widths (one per hidden layer); overrides widthFactor. */
  hiddenDims?: number[];
  epochs?: number;
  /** Training rows (default 4096). */
  samples?: number;
  batchSize?: number;
  learningRate?: number;
  loss?: DistillLoss;
  /** Softmax temperature for loss 'kl' (default 2). */
  temperature?: number;
  /** Whole technique (teacher outputs, training, export, check) should finish within this (default 60 s). */
  timeBudgetMs?: number;
  /** 'teacher-units' (default): start from the teacher's strongest hidden units; 'random': Glorot init. */
  init?: 'teacher-units' | 'random';
  seed?: number;
  /** Held-out rows for the agreement check (default 1024). */
  holdoutRows?: number;
}

/** The technique's options from a plan; throws what is wrong with them. */
export function readOptions(raw: RawOptions | undefined): DistillOptions {
  const o = raw ?? {};
  const out: DistillOptions = {};
  const positive = (k: keyof DistillOptions, integer = false) => {
    const v = o[k];
    if (v === undefined) return;
    if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v)))
      throw new Error(`option ${k} must be a positive ${integer ? 'integer' : 'number'}`);
    (out as Record<string, unknown>)[k] = v;
  };
  positive('widthFactor');
  positive('epochs', true);
  positive('samples', true);
  positive('batchSize', true);
  positive('learningRate');
  positive('temperature');
  positive('timeBudgetMs');
  positive('holdoutRows', true);
  if (o.seed !== undefined) {
    if (typeof o.seed !== 'number' || !Number.isInteger(o.seed)) throw new Error('option seed must be an integer');
    out.seed = o.seed;
  }
  if (out.widthFactor !== undefined && out.widthFactor >= 1)
    throw new Error('option widthFactor must be below 1 (the student is narrower)');
  if (o.hiddenDims !== undefined) {
    if (!Array.isArray(o.hiddenDims) || !o.hiddenDims.every((d) => Number.isInteger(d) && (d as number) > 0))
      throw new Error('option hiddenDims must be a list of positive integers');
    out.hiddenDims = o.hiddenDims as number[];
  }
  if (o.loss !== undefined) {
    if (o.loss !== 'mse' && o.loss !== 'kl') throw new Error("option loss must be 'mse' or 'kl'");
    out.loss = o.loss;
  }
  if (o.init !== undefined) {
    if (o.init !== 'teacher-units' && o.init !== 'random')
      throw new Error("option init must be 'teacher-units' or 'random'");
    out.init = o.init;
  }
  return out;
}
