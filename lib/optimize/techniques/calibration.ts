/**
 * Calibration for static quantization: which range of values each activation tensor takes on
 * representative inputs.
 *
 * The model is copied with the wanted intermediate tensors added as graph outputs (the "augmented" model,
 * written to the work dir so it can be inspected), run in onnxruntime on every calibration batch, and each
 * tensor's values are summarised:
 * - `minmax`: the smallest and largest value seen. Exact on the calibration data, but one outlier widens the
 *   range and costs every other value resolution.
 * - `percentile`: the range that keeps the central `percentile`% of values (default 99.99, from a 2048-bin
 *   histogram over the observed range; clipping the rest). Robust to rare outliers.
 * - `entropy`: the clipping threshold whose 8-bit quantized histogram is closest to the observed one in
 *   Kullback-Leibler divergence (the TensorRT method): a histogram of |x| with 2048 bins, every candidate
 *   threshold from the number of quantized levels up to the largest value. Exact zeros are left out of the
 *   histogram: zero is exactly representable, and the spike of a Relu output's zeros would otherwise drive
 *   the threshold down.
 * Histogram methods need a second pass over the data (the first finds each tensor's range).
 *
 * Calibration data comes from the user (`ctx.calibration`, the real distribution: best) or is generated from
 * the input specs: uniform in [-1, 1) for float inputs (the distribution the benchmark engine feeds), 0 or 1 for
 * integer ones. Generated data only knows the input's shape, not the values real requests carry, so the ranges
 * it yields are weaker: real inputs outside them are clipped. Supply real samples for deployment.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { TensorSummary } from '../../onnx/analyze';
import { tensorValueInfo } from '../../onnx/builders';
import { seededUniform } from '../../onnx/mlp';
import { decodeModel, encodeModel } from '../../onnx/model';
import { TensorDataType } from '../../onnx/tensor';
import { ORT_TYPE_OF_SPEC } from '../sampleInputs';
import type { CalibrationSample, Feeds } from '../technique';
import type { OrtFeeds } from './modelAgreement';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

export interface CalibrationData {
  /** One onnxruntime feed per run. */
  batches: OrtFeeds[];
  source: 'user' | 'generated';
  /** Rows (batch items) in all batches together. */
  rows: number;
  /** What the data is, for notes. */
  description: string;
}

export interface GeneratedCalibrationOptions {
  /** Runs (default 16). */
  batches?: number;
  /** Batch size of each run when the first dim is dynamic (default 8). */
  batchSize?: number;
  /** Size of other dynamic dims (default 1). */
  otherDynamicDim?: number;
  /** PRNG seed (default 1234: not the benchmark engine's seed, so agreement is not measured on calibration data). */
  seed?: number;
  /**
   * Inputs that run (the engine's batch-1 sample inputs): their dims are used as they are, and non-float inputs
   * (a sample rate, token ids, a mask) are copied, since random integers may not be valid for them. Float
   * inputs are drawn afresh.
   */
  template?: Feeds;
}

function makeTensor(type: ort.Tensor.Type, dims: number[], value: (i: number) => number): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case 'float32':
      return new ort.Tensor(
        type,
        Float32Array.from({ length: n }, (_, i) => value(i)),
        dims,
      );
    case 'float64':
      return new ort.Tensor(
        type,
        Float64Array.from({ length: n }, (_, i) => value(i)),
        dims,
      );
    case 'int64':
      return new ort.Tensor(
        type,
        BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.round(value(i)))),
        dims,
      );
    case 'int32':
      return new ort.Tensor(
        type,
        Int32Array.from({ length: n }, (_, i) => Math.round(value(i))),
        dims,
      );
    case 'int8':
      return new ort.Tensor(
        type,
        Int8Array.from({ length: n }, (_, i) => Math.round(value(i))),
        dims,
      );
    case 'uint8':
    case 'bool':
      return new ort.Tensor(
        type,
        Uint8Array.from({ length: n }, (_, i) => Math.round(value(i))),
        dims,
      );
    default:
      throw new Error(`cannot make a ${type} tensor`);
  }
}

/** Deterministic inputs from the input specs (see the module comment for why they are a weak substitute). */
export function generateCalibrationData(
  inputs: TensorSummary[],
  opts: GeneratedCalibrationOptions = {},
): CalibrationData {
  if (opts.template) return generateFromTemplate(inputs, opts.template, opts);
  const runs = opts.batches ?? 16;
  const batchSize = opts.batchSize ?? 8;
  const rand = seededUniform(opts.seed ?? 1234);
  const batches: OrtFeeds[] = [];
  let rows = 0;
  for (let r = 0; r < runs; r++) {
    const feeds: OrtFeeds = {};
    let runRows = 1;
    for (const input of inputs) {
      const type = ORT_TYPE_OF_SPEC[input.dataType];
      if (!type)
        throw new Error(
          `cannot generate calibration data for input '${input.name}' of type ${input.dataType}; supply calibration samples`,
        );
      const dims = input.shape.map((d, i) =>
        typeof d === 'number' && d > 0 ? d : i === 0 ? batchSize : (opts.otherDynamicDim ?? 1),
      );
      if (input.shape.length > 0) runRows = Math.max(runRows, dims[0]);
      const isFloat = type === 'float32' || type === 'float64';
      feeds[input.name] = makeTensor(type, dims, () => (isFloat ? rand() * 2 - 1 : Math.floor(rand() * 2)));
    }
    rows += runRows;
    batches.push(feeds);
  }
  return {
    batches,
    source: 'generated',
    rows,
    description: `${runs} generated batches (${rows} rows, uniform in [-1, 1) from the input specs: weaker ranges than real data)`,
  };
}

function generateFromTemplate(
  inputs: TensorSummary[],
  template: Feeds,
  opts: GeneratedCalibrationOptions,
): CalibrationData {
  const runs = opts.batches ?? 32;
  const rand = seededUniform(opts.seed ?? 1234);
  const batches: OrtFeeds[] = [];
  for (let r = 0; r < runs; r++) {
    const feeds: OrtFeeds = {};
    for (const input of inputs) {
      const t = template[input.name];
      if (!t) throw new Error(`the sample inputs have no value for input '${input.name}'`);
      feeds[input.name] =
        t.type === 'float32' || t.type === 'float64'
          ? makeTensor(t.type, t.dims, () => rand() * 2 - 1)
          : new ort.Tensor(t.type, t.data as never, t.dims);
    }
    batches.push(feeds);
  }
  return {
    batches,
    source: 'generated',
    rows: runs,
    description: `${runs} generated samples (float inputs uniform in [-1, 1), others as in the sample inputs: weaker ranges than real data)`,
  };
}

/** The user's calibration samples as onnxruntime feeds, checked against the model's inputs. */
export function userCalibrationData(
  inputs: TensorSummary[],
  samples: CalibrationSample[],
  template?: Feeds,
): CalibrationData {
  if (samples.length === 0) throw new Error('the calibration data has no samples');
  let rows = 0;
  const batches = samples.map((sample, s) => {
    const feeds: OrtFeeds = {};
    for (const input of inputs) {
      const given = sample[input.name];
      const fallback = template?.[input.name];
      if (!given && fallback) {
        // An input the samples leave out (a fixed sample rate, a state) takes the engine's sample value.
        feeds[input.name] = new ort.Tensor(fallback.type, fallback.data as never, fallback.dims);
        continue;
      }
      if (!given) throw new Error(`calibration sample ${s} has no value for input '${input.name}'`);
      const n = given.dims.reduce((a, b) => a * b, 1);
      if (n !== given.data.length)
        throw new Error(
          `calibration sample ${s}, input '${input.name}': ${given.data.length} values for dims [${given.dims.join(', ')}]`,
        );
      if (input.shape.length !== given.dims.length) {
        throw new Error(
          `calibration sample ${s}, input '${input.name}': rank ${given.dims.length}, the model expects ${input.shape.length}`,
        );
      }
      input.shape.forEach((d, i) => {
        if (typeof d === 'number' && d > 0 && given.dims[i] !== d) {
          throw new Error(
            `calibration sample ${s}, input '${input.name}': dim ${i} is ${given.dims[i]}, the model expects ${d}`,
          );
        }
      });
      const type = ORT_TYPE_OF_SPEC[input.dataType];
      if (!type)
        throw new Error(`input '${input.name}' has type ${input.dataType}, which calibration samples cannot carry`);
      feeds[input.name] =
        type === 'float32'
          ? new ort.Tensor('float32', given.data, given.dims)
          : makeTensor(type, given.dims, (i) => given.data[i]);
    }
    rows += Math.max(1, ...inputs.map((i) => sample[i.name]?.dims[0] ?? 1));
    return feeds;
  });
  return {
    batches,
    source: 'user',
    rows,
    description: `${samples.length} user-supplied calibration samples (${rows} rows)`,
  };
}

/** A copy of the model that also outputs `names` (float32 intermediate tensors). Names that already are graph outputs are not repeated. */
export function augmentWithOutputs(model: Uint8Array, names: readonly string[]): Uint8Array {
  const copy = decodeModel(model);
  copy.graph ??= {};
  copy.graph.output ??= [];
  const outputs = copy.graph.output;
  const present = new Set(outputs.map((o) => o.name));
  for (const name of names) {
    if (present.has(name)) continue;
    outputs.push(tensorValueInfo(name, TensorDataType.FLOAT, []));
    // An empty shape would claim a scalar: drop it so onnxruntime infers the shape.
    delete outputs[outputs.length - 1].type!.tensor_type!.shape;
    present.add(name);
  }
  return encodeModel(copy);
}

/** The range a tensor is quantized over, and what calibration saw. */
export interface TensorRange {
  min: number;
  max: number;
  observedMin: number;
  observedMax: number;
}

export interface CalibrationOptions {
  method?: CalibrationMethod;
  /** For `percentile`: the share of values kept, in percent (default 99.99). */
  percentile?: number;
  /** Histogram bins (default 2048). */
  bins?: number;
  /** Where the augmented model is written. */
  workDir: string;
  onProgress?: (fraction: number, detail?: string) => void;
}

export interface CalibrationResult {
  ranges: Map<string, TensorRange>;
  method: CalibrationMethod;
  augmentedModelPath: string;
}

function floatValues(t: ort.Tensor | undefined, name: string): Float32Array | Float64Array {
  if (!t) throw new Error(`calibration run did not produce '${name}'`);
  if (t.type !== 'float32' && t.type !== 'float64')
    throw new Error(`tensor '${name}' is ${t.type}, not float: it cannot be calibrated`);
  return t.data as Float32Array | Float64Array;
}

/**
 * Runs the model (with `names` exposed) over the calibration batches and returns each tensor's range by the
 * chosen method. Graph inputs among `names` are read from the feeds.
 */
export async function calibrateRanges(
  model: Uint8Array,
  names: readonly string[],
  data: CalibrationData,
  opts: CalibrationOptions,
): Promise<CalibrationResult> {
  const method = opts.method ?? 'minmax';
  const bins = opts.bins ?? 2048;
  const inputNames = new Set(Object.keys(data.batches[0] ?? {}));
  const intermediate = names.filter((n) => !inputNames.has(n));
  const augmented = augmentWithOutputs(model, intermediate);
  const augmentedModelPath = join(opts.workDir, 'calibration-augmented.onnx');
  await writeFile(augmentedModelPath, augmented);
  const session = await ort.InferenceSession.create(augmentedModelPath, { logSeverityLevel: 3 });
  const passes = method === 'minmax' ? 1 : 2;
  const total = passes * data.batches.length;
  let done = 0;
  const valuesOf = async (feeds: OrtFeeds): Promise<Map<string, Float32Array | Float64Array>> => {
    const out = intermediate.length ? ((await session.run(feeds, intermediate)) as Record<string, ort.Tensor>) : {};
    const values = new Map<string, Float32Array | Float64Array>();
    for (const n of names) values.set(n, floatValues(inputNames.has(n) ? feeds[n] : out[n], n));
    return values;
  };
  try {
    const lo = new Map<string, number>(names.map((n) => [n, Infinity]));
    const hi = new Map<string, number>(names.map((n) => [n, -Infinity]));
    for (const feeds of data.batches) {
      for (const [n, v] of await valuesOf(feeds)) {
        let a = lo.get(n)!;
        let b = hi.get(n)!;
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          if (x < a) a = x;
          if (x > b) b = x;
        }
        lo.set(n, a);
        hi.set(n, b);
      }
      opts.onProgress?.(++done / total, `calibration pass 1/${passes}: batch ${done} of ${data.batches.length}`);
    }
    const ranges = new Map<string, TensorRange>();
    for (const n of names) {
      const a = lo.get(n)!;
      const b = hi.get(n)!;
      if (!Number.isFinite(a) || !Number.isFinite(b))
        throw new Error(`tensor '${n}' took non-finite values (${a} .. ${b}) during calibration`);
      ranges.set(n, { min: a, max: b, observedMin: a, observedMax: b });
    }
    if (method === 'minmax') return { ranges, method, augmentedModelPath };

    // Pass 2: histograms. Percentile: signed values over [min, max]; entropy: |x| over [0, max |x|].
    const hists = new Map<string, Float64Array>(names.map((n) => [n, new Float64Array(bins)]));
    for (const feeds of data.batches) {
      for (const [n, v] of await valuesOf(feeds)) {
        const r = ranges.get(n)!;
        const h = hists.get(n)!;
        const start = method === 'percentile' ? r.observedMin : 0;
        const end =
          method === 'percentile' ? r.observedMax : Math.max(Math.abs(r.observedMin), Math.abs(r.observedMax));
        const width = (end - start) / bins;
        if (!(width > 0)) {
          h[0] += v.length;
          continue;
        }
        const entropy = method === 'entropy';
        for (let i = 0; i < v.length; i++) {
          const x = entropy ? Math.abs(v[i]) : v[i];
          // Exact zeros (half of every Relu output) are exactly representable at any scale; in the entropy
          // histogram their spike would dominate the divergence and pull the threshold far too low.
          if (entropy && x === 0) continue;
          let bin = Math.floor((x - start) / width);
          if (bin >= bins) bin = bins - 1;
          h[bin]++;
        }
      }
      opts.onProgress?.(
        ++done / total,
        `calibration pass 2/2: batch ${done - data.batches.length} of ${data.batches.length}`,
      );
    }
    for (const n of names) {
      const r = ranges.get(n)!;
      const h = hists.get(n)!;
      if (method === 'percentile') {
        const [a, b] = percentileRange(h, r.observedMin, r.observedMax, opts.percentile ?? 99.99);
        r.min = a;
        r.max = b;
      } else {
        const amax = Math.max(Math.abs(r.observedMin), Math.abs(r.observedMax));
        // Non-negative tensors (after Relu) use all 255 steps of 8 bits on [0, T]; signed ones about 128 per side.
        const levels = r.observedMin >= 0 ? 255 : 128;
        const t = (entropyThresholdBins(h, levels) / bins) * amax;
        r.min = Math.max(r.observedMin, -t);
        r.max = Math.min(r.observedMax, t);
      }
    }
    return { ranges, method, augmentedModelPath };
  } finally {
    await session.release();
  }
}

/**
 * The range [lower, upper] keeping the central `percentile`% of a histogram over [start, end]: (100 − p)/2 % is
 * clipped from each side, by bin edges (outward, so no kept value is cut).
 */
export function percentileRange(hist: Float64Array, start: number, end: number, percentile: number): [number, number] {
  if (!(percentile > 0 && percentile <= 100)) throw new Error(`percentile must be in (0, 100], got ${percentile}`);
  const total = hist.reduce((a, b) => a + b, 0);
  const width = (end - start) / hist.length;
  if (total === 0 || !(width > 0)) return [start, end];
  const clip = (total * (100 - percentile)) / 200;
  let lowerBin = 0;
  for (let acc = 0; lowerBin < hist.length; lowerBin++) {
    acc += hist[lowerBin];
    if (acc > clip) break;
  }
  let upperBin = hist.length - 1;
  for (let acc = 0; upperBin >= 0; upperBin--) {
    acc += hist[upperBin];
    if (acc > clip) break;
  }
  return [start + lowerBin * width, start + (upperBin + 1) * width];
}

/**
 * The number of histogram bins (of |x|, from 0) to keep so that quantizing the kept part to `levels` steps loses
 * the least information: minimises KL(P‖Q), where P is the kept histogram with everything beyond the threshold
 * added to its last bin, and Q is P squeezed into `levels` groups and spread back evenly over each group's
 * non-empty bins.
 */
export function entropyThresholdBins(hist: Float64Array, levels: number): number {
  const nb = hist.length;
  if (nb <= levels) return nb;
  let total = 0;
  for (let i = 0; i < nb; i++) total += hist[i];
  if (total === 0) return nb;
  // Suffix sums give the outlier mass beyond each candidate threshold in O(1).
  const beyond = new Float64Array(nb + 1);
  for (let i = nb - 1; i >= 0; i--) beyond[i] = beyond[i + 1] + hist[i];
  let bestBins = nb;
  let bestKl = Infinity;
  const p = new Float64Array(nb);
  const q = new Float64Array(nb);
  for (let i = levels; i <= nb; i++) {
    p.set(hist.subarray(0, i));
    p[i - 1] += beyond[i];
    q.fill(0, 0, i);
    for (let j = 0; j < levels; j++) {
      const from = Math.floor((j * i) / levels);
      const to = j === levels - 1 ? i : Math.floor(((j + 1) * i) / levels);
      let mass = 0;
      let nonEmpty = 0;
      for (let k = from; k < to; k++) {
        mass += hist[k];
        if (p[k] > 0) nonEmpty++;
      }
      if (nonEmpty === 0) continue;
      const each = mass / nonEmpty;
      for (let k = from; k < to; k++) if (p[k] > 0) q[k] = each;
    }
    let pSum = 0;
    let qSum = 0;
    for (let k = 0; k < i; k++) {
      pSum += p[k];
      qSum += q[k];
    }
    if (qSum === 0) continue;
    let kl = 0;
    for (let k = 0; k < i; k++) {
      if (p[k] === 0) continue;
      const pk = p[k] / pSum;
      // A kept bin Q leaves empty (only possible at the outlier bin) is smoothed rather than made infinitely costly.
      const qk = Math.max(q[k] / qSum, 1e-12);
      kl += pk * Math.log(pk / qk);
    }
    if (kl < bestKl) {
      bestKl = kl;
      bestBins = i;
    }
  }
  return bestBins;
}
