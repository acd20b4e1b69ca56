/**
 * Benchmarks a candidate model against the original on the same inputs, in one process, one after
 * the other: size, p50/p95 latency at batch 1 on one thread, and how far the outputs drift.
 */
import { stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import type { BenchmarkReport, LatencyFigures, TensorSpec } from '../../workflows/types';
import { sampleInputs } from './sampleInputs';

export interface BenchmarkOptions {
  iterations?: number;
  warmup?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function benchmarkAgainstOriginal(
  plan: string,
  originalPath: string,
  candidatePath: string,
  inputs: TensorSpec[],
  opts: BenchmarkOptions = {},
): Promise<BenchmarkReport> {
  const iterations = opts.iterations ?? 100;
  const warmup = opts.warmup ?? 10;
  const batchSize = opts.batchSize ?? 1;
  const feeds = sampleInputs(inputs, batchSize);
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 };

  const original = await ort.InferenceSession.create(originalPath, sessionOptions);
  const candidate = await ort.InferenceSession.create(candidatePath, sessionOptions);
  try {
    const total = 2 * (iterations + warmup);
    let done = 0;
    const tick = () => opts.onProgress?.(++done, total);
    const [origOut, origLat] = await timeRuns(original, feeds, iterations, warmup, tick);
    const [candOut, candLat] = await timeRuns(candidate, feeds, iterations, warmup, tick);
    return {
      plan,
      iterations,
      batchSize,
      original: { sizeBytes: (await stat(originalPath)).size, latency: origLat },
      candidate: { sizeBytes: (await stat(candidatePath)).size, latency: candLat },
      maxAbsDiff: maxAbsDifference(origOut, candOut),
      speedup: origLat.p50Ms / candLat.p50Ms,
      sizeRatio: (await stat(originalPath)).size / (await stat(candidatePath)).size,
    };
  } finally {
    await original.release();
    await candidate.release();
  }
}

async function timeRuns(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  iterations: number,
  warmup: number,
  tick: () => void,
): Promise<[ort.InferenceSession.OnnxValueMapType, LatencyFigures]> {
  let out = await session.run(feeds);
  tick();
  for (let i = 1; i < warmup; i++) {
    await session.run(feeds);
    tick();
  }
  const ms: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    tick();
  }
  return [out, latencyFigures(ms)];
}

export function latencyFigures(ms: number[]): LatencyFigures {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50Ms: at(0.5), p95Ms: at(0.95), meanMs: ms.reduce((a, b) => a + b, 0) / ms.length };
}

/** Largest |a-b| over every numeric output the two models share. */
export function maxAbsDifference(a: ort.InferenceSession.OnnxValueMapType, b: ort.InferenceSession.OnnxValueMapType): number {
  let max = 0;
  for (const name of Object.keys(a)) {
    const x = a[name] as ort.Tensor;
    const y = b[name] as ort.Tensor | undefined;
    if (!y) throw new Error(`candidate model has no output "${name}"`);
    if (x.size !== y.size) throw new Error(`output "${name}" has ${y.size} elements in the candidate, ${x.size} in the original`);
    const xd = x.data as ArrayLike<number | bigint>;
    const yd = y.data as ArrayLike<number | bigint>;
    for (let i = 0; i < xd.length; i++) max = Math.max(max, Math.abs(Number(xd[i]) - Number(yd[i])));
  }
  return max;
}
