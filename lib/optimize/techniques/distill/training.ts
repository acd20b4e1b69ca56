/**
 * The student network and its training: the teacher's layers, narrower (each hidden width × `widthFactor`, or
 * `hiddenDims`), started from the teacher's most important hidden units (incoming × outgoing weight norms: a
 * structured prune) or at random, and trained in TypeScript (Float32Array math, Adam, mini-batches, seeded
 * shuffling) to match the teacher's logits, with MSE or KL divergence of temperature-softened softmaxes.
 */
import { seededUniform } from '../../../onnx/mlp';
import { inputGradient, linearForward, weightGradient } from './denseKernels';
import type { Activation, MlpLayer } from './detect';

export interface StudentLayer {
  inDim: number;
  outDim: number;
  w: Float32Array;
  b: Float32Array;
  hasBias: boolean;
  activation?: { kind: Activation; alpha: number };
}

/** Keeps the `width` hidden units of each hidden layer whose incoming × outgoing weight norms are largest. */
export function studentFromTeacherUnits(layers: MlpLayer[], widths: number[]): StudentLayer[] {
  const keep: number[][] = [];
  for (let l = 0; l < layers.length - 1; l++) {
    const cur = layers[l];
    const next = layers[l + 1];
    const score = new Float64Array(cur.outDim);
    for (let j = 0; j < cur.outDim; j++) {
      let incoming = cur.b[j] * cur.b[j];
      for (let i = 0; i < cur.inDim; i++) incoming += cur.w[i * cur.outDim + j] ** 2;
      let outgoing = 0;
      for (let k = 0; k < next.outDim; k++) outgoing += next.w[j * next.outDim + k] ** 2;
      score[j] = Math.sqrt(incoming * outgoing);
    }
    const order = Array.from({ length: cur.outDim }, (_, j) => j).sort((a, b) => score[b] - score[a] || a - b);
    keep.push(order.slice(0, widths[l]).sort((a, b) => a - b));
  }
  return layers.map((layer, l) => {
    const rows = l === 0 ? Array.from({ length: layer.inDim }, (_, i) => i) : keep[l - 1];
    const cols = l === layers.length - 1 ? Array.from({ length: layer.outDim }, (_, j) => j) : keep[l];
    const w = new Float32Array(rows.length * cols.length);
    for (const [i, r] of rows.entries())
      for (const [j, c] of cols.entries()) w[i * cols.length + j] = layer.w[r * layer.outDim + c];
    return {
      inDim: rows.length,
      outDim: cols.length,
      w,
      b: Float32Array.from(cols, (c) => layer.b[c]),
      hasBias: layer.bias !== undefined,
      activation: layer.activation ? { kind: layer.activation.kind, alpha: layer.activation.alpha } : undefined,
    };
  });
}

/** Glorot-uniform weights, zero biases, seeded. */
export function randomStudent(layers: MlpLayer[], widths: number[], seed: number): StudentLayer[] {
  const rand = seededUniform(seed);
  const dims = [layers[0].inDim, ...widths, layers[layers.length - 1].outDim];
  return layers.map((layer, l) => {
    const limit = Math.sqrt(6 / (dims[l] + dims[l + 1]));
    return {
      inDim: dims[l],
      outDim: dims[l + 1],
      w: Float32Array.from({ length: dims[l] * dims[l + 1] }, () => (rand() * 2 - 1) * limit),
      b: new Float32Array(dims[l + 1]),
      hasBias: layer.bias !== undefined,
      activation: layer.activation ? { kind: layer.activation.kind, alpha: layer.activation.alpha } : undefined,
    };
  });
}

function activate(kind: Activation, alpha: number, v: Float32Array): void {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    switch (kind) {
      case 'Relu':
        v[i] = Math.max(x, 0);
        break;
      case 'LeakyRelu':
        v[i] = x > 0 ? x : alpha * x;
        break;
      case 'Tanh':
        v[i] = Math.tanh(x);
        break;
      case 'Sigmoid':
        v[i] = 1 / (1 + Math.exp(-x));
        break;
    }
  }
}

/** d(activation)/d(pre-activation), written in terms of the activation's output y, times the incoming gradient. */
function activationGrad(kind: Activation, alpha: number, y: Float32Array, grad: Float32Array): void {
  for (let i = 0; i < grad.length; i++) {
    const v = y[i];
    switch (kind) {
      case 'Relu':
        if (!(v > 0)) grad[i] = 0;
        break;
      case 'LeakyRelu':
        if (!(v > 0)) grad[i] *= alpha;
        break;
      case 'Tanh':
        grad[i] *= 1 - v * v;
        break;
      case 'Sigmoid':
        grad[i] *= v * (1 - v);
        break;
    }
  }
}

/** Forward pass of the student; returns the activations of every layer (the last is the logits). */
export function studentForward(layers: StudentLayer[], x: Float32Array, rows: number): Float32Array[] {
  const acts: Float32Array[] = [];
  let a = x;
  for (const layer of layers) {
    const out = new Float32Array(rows * layer.outDim);
    linearForward(a, rows, layer.inDim, layer.w, layer.b, layer.outDim, out);
    if (layer.activation) activate(layer.activation.kind, layer.activation.alpha, out);
    acts.push(out);
    a = out;
  }
  return acts;
}

export type DistillLoss = 'mse' | 'kl';

function softmaxRows(z: Float32Array, rows: number, n: number, temperature: number): Float32Array {
  const p = new Float32Array(z.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, z[r * n + j] / temperature);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += p[r * n + j] = Math.exp(z[r * n + j] / temperature - max);
    for (let j = 0; j < n; j++) p[r * n + j] /= sum;
  }
  return p;
}

/** Loss and its gradient with respect to the student's logits, averaged over the rows. */
export function distillLoss(
  kind: DistillLoss,
  student: Float32Array,
  teacher: Float32Array,
  rows: number,
  n: number,
  temperature: number,
): { loss: number; grad: Float32Array } {
  const grad = new Float32Array(student.length);
  let loss = 0;
  if (kind === 'mse') {
    for (let i = 0; i < student.length; i++) {
      const d = student[i] - teacher[i];
      loss += d * d;
      grad[i] = (2 * d) / (rows * n);
    }
    return { loss: loss / (rows * n), grad };
  }
  // KL(teacher ‖ student) of softmax(z / T), scaled by T² so gradients keep their size across temperatures.
  const ps = softmaxRows(student, rows, n, temperature);
  const pt = softmaxRows(teacher, rows, n, temperature);
  for (let i = 0; i < student.length; i++) {
    if (pt[i] > 0) loss += pt[i] * Math.log(pt[i] / Math.max(ps[i], 1e-30));
    grad[i] = (temperature * (ps[i] - pt[i])) / rows;
  }
  return { loss: (loss * temperature * temperature) / rows, grad };
}

class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;
  constructor(
    private readonly params: Float32Array[],
    private readonly lr: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }
  step(grads: Float32Array[], lr = this.lr): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    this.params.forEach((p, k) => {
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < p.length; i++) {
        m[i] = this.beta1 * m[i] + (1 - this.beta1) * g[i];
        v[i] = this.beta2 * v[i] + (1 - this.beta2) * g[i] * g[i];
        p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + this.eps);
      }
    });
  }
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  loss: DistillLoss;
  temperature: number;
  seed: number;
  /** Stop starting new epochs after this long (ms); an epoch in progress also stops at its next batch. */
  timeBudgetMs: number;
  onProgress?: (fraction: number, detail: string) => void;
}

export interface TrainResult {
  epochs: number;
  stoppedByBudget: boolean;
  lossHistory: number[];
  elapsedMs: number;
}

/** One backward pass over a batch; accumulates into grads (w0, b0, w1, b1, ...). */
function backward(
  layers: StudentLayer[],
  x: Float32Array,
  rows: number,
  acts: Float32Array[],
  dLogits: Float32Array,
  grads: Float32Array[],
): void {
  let delta = dLogits;
  for (let l = layers.length - 1; l >= 0; l--) {
    const layer = layers[l];
    const input = l === 0 ? x : acts[l - 1];
    const gw = grads[2 * l];
    const gb = grads[2 * l + 1];
    const n = layer.outDim;
    const k = layer.inDim;
    weightGradient(input, rows, k, delta, n, gw);
    gb.fill(0);
    if (layer.hasBias) for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) gb[j] += delta[r * n + j];
    if (l === 0) break;
    const prev = new Float32Array(rows * k);
    inputGradient(delta, rows, n, layer.w, k, prev);
    const below = layers[l - 1].activation;
    if (below) activationGrad(below.kind, below.alpha, acts[l - 1], prev);
    delta = prev;
  }
}

/** Loss and gradients (w0, b0, w1, b1, ...) of the student on one batch; what training steps on, exposed for checks. */
export function studentGradients(
  layers: StudentLayer[],
  x: Float32Array,
  rows: number,
  targets: Float32Array,
  loss: DistillLoss,
  temperature = 2,
): { loss: number; grads: Float32Array[] } {
  const grads = layers.flatMap((l) => [new Float32Array(l.w.length), new Float32Array(l.b.length)]);
  const acts = studentForward(layers, x, rows);
  const outDim = layers[layers.length - 1].outDim;
  const value = distillLoss(loss, acts[acts.length - 1], targets, rows, outDim, temperature);
  backward(layers, x, rows, acts, value.grad, grads);
  return { loss: value.loss, grads };
}

/** Trains the student on (x, teacher logits) pairs, in place. Deterministic for a given seed. */
export function trainStudent(
  layers: StudentLayer[],
  x: Float32Array,
  targets: Float32Array,
  rows: number,
  opts: TrainOptions,
): TrainResult {
  const inDim = layers[0].inDim;
  const outDim = layers[layers.length - 1].outDim;
  const params = layers.flatMap((l) => [l.w, l.b]);
  const grads = params.map((p) => new Float32Array(p.length));
  const adam = new Adam(params, opts.learningRate);
  const rand = seededUniform(opts.seed);
  const order = Array.from({ length: rows }, (_, i) => i);
  const start = Date.now();
  const lossHistory: number[] = [];
  let stoppedByBudget = false;
  let epochs = 0;
  let lastBeat = 0;
  const totalSteps = opts.epochs * Math.ceil(rows / opts.batchSize);
  let step = 0;
  const bx = new Float32Array(opts.batchSize * inDim);
  const bt = new Float32Array(opts.batchSize * outDim);
  for (let epoch = 0; epoch < opts.epochs && !stoppedByBudget; epoch++) {
    for (let i = rows - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let epochLoss = 0;
    let batches = 0;
    for (let s = 0; s < rows; s += opts.batchSize) {
      if (Date.now() - start > opts.timeBudgetMs) {
        stoppedByBudget = true;
        break;
      }
      const n = Math.min(opts.batchSize, rows - s);
      for (let r = 0; r < n; r++) {
        const src = order[s + r];
        bx.set(x.subarray(src * inDim, (src + 1) * inDim), r * inDim);
        bt.set(targets.subarray(src * outDim, (src + 1) * outDim), r * outDim);
      }
      const xb = bx.subarray(0, n * inDim);
      const acts = studentForward(layers, xb, n);
      const { loss, grad } = distillLoss(
        opts.loss,
        acts[acts.length - 1],
        bt.subarray(0, n * outDim),
        n,
        outDim,
        opts.temperature,
      );
      backward(layers, xb, n, acts, grad, grads);
      for (let l = 0; l < layers.length; l++) if (!layers[l].hasBias) grads[2 * l + 1].fill(0);
      // Cosine decay to 10% of the learning rate over the planned steps.
      const lr =
        opts.learningRate * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps)));
      adam.step(grads, lr);
      step++;
      epochLoss += loss;
      batches++;
      const now = Date.now();
      if (now - lastBeat > 500) {
        lastBeat = now;
        const fraction = Math.max(step / totalSteps, (now - start) / opts.timeBudgetMs);
        opts.onProgress?.(
          Math.min(1, fraction),
          `epoch ${epoch + 1}/${opts.epochs}, loss ${(epochLoss / batches).toPrecision(3)}`,
        );
      }
    }
    if (batches > 0) {
      lossHistory.push(epochLoss / batches);
      if (!stoppedByBudget || batches * opts.batchSize >= rows) epochs++;
    }
  }
  return { epochs, stoppedByBudget, lossHistory, elapsedMs: Date.now() - start };
}
