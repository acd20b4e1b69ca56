/**
 * distill-mlp: a narrower student trained in TypeScript on the teacher's outputs, exported as ONNX and checked
 * in onnxruntime-node; other architectures are declined with the external-training message.
 *
 * The main teacher is a real classifier, not a random MLP: a generated 32-128-128-10 MLP trained (here, with the
 * same TypeScript trainer) on 10 overlapping Gaussian blobs, so its decisions follow the data (~67% accuracy on
 * held-out rows: the blobs overlap). A random-weight MLP is a poor teacher for a top-1 test: its logits are
 * nearly flat in the input, so most rows sit within rounding of a class tie.
 *
 * Threshold: the half-width student must agree with the teacher's top-1 on ≥ 85% of held-out rows of the data
 * distribution (chance is 10%; the teacher itself is only ~67% right on these rows, so rows near the class
 * boundaries, where a 3x smaller network is expected to differ, are plentiful), and clearly more often than the
 * same student before training (its init alone, the teacher's strongest units: ~78%). Measured here: ~90%.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../lib/onnx/analyze';
import { makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { generateCnnModel } from '../../lib/onnx/cnn';
import { buildMlpModel, generateMlpModel, seededUniform } from '../../lib/onnx/generate';
import { decodeModel, encodeModel } from '../../lib/onnx/model';
import { float32Tensor, TensorDataType } from '../../lib/onnx/tensor';
import type { CalibrationSample, TechniqueContext, TechniqueResult } from '../../lib/optimize/technique';
import {
  detectMlp,
  distillMlp,
  exportStudent,
  type MlpStructure,
  type StudentLayer,
  studentFromTeacherUnits,
  studentGradients,
  trainStudent,
} from '../../lib/optimize/techniques/distill';
import { agreementOf, type OrtFeeds, runBatches } from '../../lib/optimize/techniques/modelAgreement';

ort.env.logLevel = 'error';

let workDir: string;
before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ferry-distill-'));
});
after(async () => rm(workDir, { recursive: true, force: true }));

function context(model: Uint8Array, extra: Partial<TechniqueContext> = {}): TechniqueContext {
  return {
    analysis: analyzeModel(decodeModel(model)),
    target: { kind: 'cpu', sameMachine: true, threads: 1 },
    workDir,
    ...extra,
  };
}

function applied(result: TechniqueResult): Extract<TechniqueResult, { applied: true }> {
  assert.equal(result.applied, true, result.applied ? '' : `not applied: ${result.reason}`);
  return result as Extract<TechniqueResult, { applied: true }>;
}

const DIM = 32;
const CLASSES = 10;

/** Rows from 10 Gaussian blobs in 32-D (centers fixed by `centerSeed`, noise σ = 1.5: the classes overlap). */
function blobs(rows: number, sampleSeed: number, centerSeed = 5): { x: Float32Array; y: Int32Array } {
  const c = seededUniform(centerSeed);
  const centers = Float32Array.from({ length: CLASSES * DIM }, () => c() * 2 - 1);
  const rand = seededUniform(sampleSeed);
  const x = new Float32Array(rows * DIM);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const k = Math.floor(rand() * CLASSES);
    y[r] = k;
    for (let f = 0; f < DIM; f++) {
      const gauss = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      x[r * DIM + f] = centers[k * DIM + f] + 1.5 * gauss;
    }
  }
  return { x, y };
}

function asFeeds(x: Float32Array, batch = 256): OrtFeeds[] {
  const out: OrtFeeds[] = [];
  for (let r = 0; r < x.length / DIM; r += batch)
    out.push({
      input: new ort.Tensor('float32', x.slice(r * DIM, (r + batch) * DIM), [Math.min(batch, x.length / DIM - r), DIM]),
    });
  return out;
}

function argmaxRows(data: Float32Array, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < data.length / classes; r++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (data[r * classes + k] > data[r * classes + best]) best = k;
    out.push(best);
  }
  return out;
}

async function predict(model: Uint8Array, x: Float32Array): Promise<{ probs: Float32Array; top1: number[] }> {
  const outs = await runBatches(model, asFeeds(x));
  const probs = Float32Array.from(outs.flatMap((o) => Array.from(o.output.data as Float32Array)));
  return { probs, top1: argmaxRows(probs, CLASSES) };
}

function mlpOf(bytes: Uint8Array): MlpStructure {
  const mlp = detectMlp(decodeModel(bytes));
  assert.notEqual(typeof mlp, 'string', String(mlp));
  return mlp as MlpStructure;
}

describe('a trained MLP classifier (32-128-128-10 + Softmax) distilled with calibration data', () => {
  let teacher: Uint8Array;
  let result: Extract<TechniqueResult, { applied: true }>;
  const heldOut = blobs(1024, 901);
  const progress: number[] = [];

  before(async () => {
    // The teacher: a generated MLP trained on labelled blobs (one-hot targets on the logits), exported as ONNX.
    const base = generateMlpModel({
      inputDim: DIM,
      hiddenDims: [128, 128],
      outputDim: CLASSES,
      softmax: true,
      seed: 3,
    });
    const layers = studentFromTeacherUnits(mlpOf(base).layers, [128, 128]);
    const train = blobs(4096, 17);
    const targets = new Float32Array(4096 * CLASSES);
    for (const [r, k] of train.y.entries()) targets[r * CLASSES + k] = 4;
    trainStudent(layers, train.x, targets, 4096, {
      epochs: 8,
      batchSize: 64,
      learningRate: 3e-3,
      loss: 'mse',
      temperature: 1,
      seed: 3,
      timeBudgetMs: 60_000,
    });
    teacher = exportStudent(base, layers, 'test teacher trained on blobs');

    const calib = blobs(2048, 23);
    const calibration: CalibrationSample[] = Array.from({ length: 8 }, (_, i) => ({
      input: { dims: [256, DIM], data: calib.x.slice(i * 256 * DIM, (i + 1) * 256 * DIM) },
    }));
    result = applied(
      await distillMlp.apply(teacher, context(teacher, { calibration, onProgress: (f) => progress.push(f) })),
    );
  });

  test('the fixture is a real classifier: the teacher is right on most held-out rows', async () => {
    const { top1 } = await predict(teacher, heldOut.x);
    const accuracy = top1.filter((k, r) => k === heldOut.y[r]).length / top1.length;
    console.log(`teacher accuracy on held-out blobs: ${accuracy.toFixed(3)}`);
    assert.ok(accuracy > 0.55, `teacher accuracy ${accuracy}`);
  });

  test('the student is an MLP with half the hidden width, the same input/output names and shapes, and is smaller', async () => {
    const student = mlpOf(result.model);
    assert.deepEqual(
      student.layers.map((l) => [l.inDim, l.outDim]),
      [
        [32, 64],
        [64, 64],
        [64, 10],
      ],
    );
    assert.equal(student.head?.kind, 'Softmax');
    assert.ok(result.model.length * 3 < teacher.length, `${teacher.length} → ${result.model.length} bytes`);
    const a = analyzeModel(decodeModel(teacher));
    const b = analyzeModel(decodeModel(result.model));
    assert.deepEqual(b.inputs, a.inputs);
    assert.deepEqual(b.outputs, a.outputs);
    assert.ok(b.parameterCount * 3 < a.parameterCount, `${a.parameterCount} → ${b.parameterCount} parameters`);
    const session = await ort.InferenceSession.create(result.model);
    assert.deepEqual([session.inputNames, session.outputNames], [['input'], ['output']]);
    await session.release();
  });

  test('top-1 agreement with the teacher on held-out rows ≥ 85%, and well above the untrained student', async () => {
    const t = await predict(teacher, heldOut.x);
    const s = await predict(result.model, heldOut.x);
    const agree = s.top1.filter((k, r) => k === t.top1[r]).length / t.top1.length;
    assert.ok(agree >= 0.85, `top-1 agreement ${agree}`);
    // The same student before any training step (init from the teacher's strongest units).
    const untrained = exportStudent(teacher, studentFromTeacherUnits(mlpOf(teacher).layers, [64, 64]), 'untrained');
    const u = await predict(untrained, heldOut.x);
    const agreeUntrained = u.top1.filter((k, r) => k === t.top1[r]).length / t.top1.length;
    console.log(
      `top-1 agreement with the teacher: trained ${agree.toFixed(3)}, untrained ${agreeUntrained.toFixed(3)}`,
    );
    assert.ok(agree >= agreeUntrained + 0.08, `trained ${agree} vs untrained ${agreeUntrained}`);
    const all = agreementOf(
      [{ output: new ort.Tensor('float32', t.probs, [1024, CLASSES]) }],
      [{ output: new ort.Tensor('float32', s.probs, [1024, CLASSES]) }],
    );
    assert.ok(all.cosine > 0.95, `cosine ${all.cosine}`);
  });

  test('the notes report what was trained and how well it agrees; progress was reported up to 1', () => {
    const text = result.notes.join('\n');
    assert.match(text, /hidden widths \[128, 128\] → \[64, 64\]/);
    assert.match(text, /calibration rows/);
    assert.match(text, /top-1 agreement \d+\.\d% of \d+ rows/);
    assert.match(text, /cosine 0\.\d+, max abs error/);
    assert.ok(progress.length >= 3 && progress.every((f) => f >= 0 && f <= 1), progress.join(','));
    assert.equal(progress[progress.length - 1], 1);
  });
});

describe('generated MLPs without calibration data', () => {
  test('a Gemm MLP (transB, alpha, beta) distills on generated inputs and says they are generated', async () => {
    const model = buildMlpModel({ inputDim: 16, hiddenDims: [64], outputDim: 4, seed: 9 });
    // Rewrite MatMul+Add as Gemm with transB = 1, alpha = 2, beta = 0.5 (weights stored [out, in], halved).
    const g = model.graph!;
    const init = new Map(g.initializer!.map((t) => [t.name!, t]));
    const nodes = [];
    for (const n of g.node!) {
      if (n.op_type === 'Add') continue;
      if (n.op_type !== 'MatMul') {
        nodes.push(n);
        continue;
      }
      const i = n.name!.match(/layer(\d+)/)![1];
      const w = init.get(`layer${i}.weight`)!;
      const [k, m] = w.dims!.map(Number);
      const values = new Float32Array(w.raw_data!.slice().buffer);
      const t = new Float32Array(k * m);
      for (let r = 0; r < k; r++) for (let c = 0; c < m; c++) t[c * k + r] = values[r * m + c] / 2;
      w.dims = [m, k];
      w.raw_data = new Uint8Array(t.buffer);
      const b = init.get(`layer${i}.bias`)!;
      b.raw_data = new Uint8Array(Float32Array.from(new Float32Array(b.raw_data!.slice().buffer), (v) => v * 2).buffer);
      const out = g.node!.find((x) => x.op_type === 'Add' && x.input![0] === n.output![0])!.output![0];
      nodes.push(
        makeNode('Gemm', [n.input![0], w.name!, b.name!], [out], {
          name: `gemm${i}`,
          attributes: [
            { name: 'transB', type: 2, i: 1 },
            { name: 'alpha', type: 1, f: 2 },
            { name: 'beta', type: 1, f: 0.5 },
          ],
        }),
      );
    }
    g.node = nodes;
    const bytes = encodeModel(model);
    const reference = generateMlpModel({ inputDim: 16, hiddenDims: [64], outputDim: 4, seed: 9 });
    const feeds = asFeeds(
      Float32Array.from({ length: 64 * 16 }, (_, i) => Math.sin(i)).map((v) => v),
      64,
    ).map((f) => ({ input: new ort.Tensor('float32', f.input.data as Float32Array, [64, 16]) }));
    const same = agreementOf(await runBatches(reference, feeds), await runBatches(bytes, feeds));
    assert.ok(same.maxAbsError < 1e-5, 'the Gemm fixture computes what the MatMul MLP does');

    const r = applied(await distillMlp.apply(bytes, context(bytes)));
    assert.match(r.notes.join('\n'), /generated rows \(uniform in \[-1, 1\)/);
    const student = mlpOf(r.model);
    assert.deepEqual(
      student.layers.map((l) => [l.inDim, l.outDim, l.transB]),
      [
        [16, 32, true],
        [32, 4, true],
      ],
    );
    const a = agreementOf(await runBatches(bytes, feeds), await runBatches(r.model, feeds));
    assert.ok(a.cosine > 0.95, `cosine ${a.cosine}`);
    // Export fidelity: dropping only the 4 weakest of 64 units, untrained, must stay very close to the teacher
    // (a transB/alpha/beta mistake in reading or writing the Gemm weights would not).
    const near = applied(
      await distillMlp.apply(bytes, context(bytes, { options: { hiddenDims: [60], epochs: 1, learningRate: 1e-12 } })),
    );
    const b = agreementOf(await runBatches(bytes, feeds), await runBatches(near.model, feeds));
    assert.ok(b.cosine > 0.99, `cosine ${b.cosine} with 60 of 64 units kept`);
  });

  test('an MLP as PyTorch exports it (Flatten of a [batch, 1, 8, 8] image, Gemm transB=1, Dropout) is recognised and distilled', async () => {
    const rand = seededUniform(31);
    const w = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
    const gemm = (i: number, x: string, y: string) =>
      makeNode('Gemm', [x, `fc${i}.weight`, `fc${i}.bias`], [y], {
        name: `fc${i}`,
        attributes: [{ name: 'transB', type: 2, i: 1 }],
      });
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'torch-mlp',
        node: [
          makeNode('Flatten', ['input'], ['flat'], { name: 'flatten', attributes: [{ name: 'axis', type: 2, i: 1 }] }),
          gemm(0, 'flat', 'h0'),
          makeNode('Relu', ['h0'], ['r0'], { name: 'relu0' }),
          makeNode('Dropout', ['r0'], ['d0'], { name: 'dropout0' }),
          gemm(1, 'd0', 'output'),
        ],
        initializer: [
          float32Tensor('fc0.weight', [48, 64], w(48 * 64, 0.25)),
          float32Tensor('fc0.bias', [48], w(48, 0.1)),
          float32Tensor('fc1.weight', [5, 48], w(5 * 48, 0.3)),
          float32Tensor('fc1.bias', [5], w(5, 0.1)),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 1, 8, 8])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 5])],
      },
    });
    const mlp = mlpOf(model);
    assert.deepEqual([mlp.inputRowDims, mlp.flatten?.name, mlp.layers.length], [[1, 8, 8], 'flatten', 2]);
    const r = applied(await distillMlp.apply(model, context(model)));
    const student = mlpOf(r.model);
    assert.deepEqual(
      student.layers.map((l) => [l.inDim, l.outDim]),
      [
        [64, 24],
        [24, 5],
      ],
    );
    const x = Float32Array.from({ length: 32 * 64 }, () => rand() * 2 - 1);
    const feeds = [{ input: new ort.Tensor('float32', x, [32, 1, 8, 8]) }];
    const a = agreementOf(await runBatches(model, feeds), await runBatches(r.model, feeds));
    console.log(`torch-style MLP: cosine ${a.cosine.toFixed(4)} after distillation to half width`);
    assert.ok(a.cosine > 0.9, `cosine ${a.cosine}`);
    // Export fidelity through Flatten and transB: keeping 46 of 48 units, untrained, stays very close.
    const near = applied(
      await distillMlp.apply(model, context(model, { options: { hiddenDims: [46], epochs: 1, learningRate: 1e-12 } })),
    );
    const b = agreementOf(await runBatches(model, feeds), await runBatches(near.model, feeds));
    assert.ok(b.cosine > 0.99, `cosine ${b.cosine} with 46 of 48 units kept`);
  });

  test('the time budget is respected and said so when it stops training', async () => {
    const model = generateMlpModel({ inputDim: 64, hiddenDims: [256, 256], outputDim: 10 });
    const t0 = Date.now();
    const r = await distillMlp.apply(model, context(model, { options: { timeBudgetMs: 1500, epochs: 1000 } }));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 6000, `took ${elapsed} ms for a 1.5 s budget`);
    if (r.applied) assert.match(r.notes.join('\n'), /stopped by the time budget of 1500 ms/);
    else assert.match(r.reason, /time budget/);
  });
});

describe('training math', () => {
  test('gradients match finite differences (Relu, Tanh, LeakyRelu, MSE and KL)', () => {
    const rand = seededUniform(12);
    const layer = (inDim: number, outDim: number, act?: StudentLayer['activation']): StudentLayer => ({
      inDim,
      outDim,
      w: Float32Array.from({ length: inDim * outDim }, () => rand() - 0.5),
      b: Float32Array.from({ length: outDim }, () => rand() - 0.5),
      hasBias: true,
      activation: act,
    });
    for (const loss of ['mse', 'kl'] as const) {
      const layers = [
        layer(5, 7, { kind: 'Tanh', alpha: 0 }),
        layer(7, 6, { kind: 'LeakyRelu', alpha: 0.1 }),
        layer(6, 6, { kind: 'Relu', alpha: 0 }),
        layer(6, 3),
      ];
      const x = Float32Array.from({ length: 4 * 5 }, () => rand() * 2 - 1);
      const targets = Float32Array.from({ length: 4 * 3 }, () => rand() * 2 - 1);
      const { grads } = studentGradients(layers, x, 4, targets, loss);
      const params = layers.flatMap((l) => [l.w, l.b]);
      let checked = 0;
      params.forEach((p, k) => {
        for (const i of [0, Math.floor(p.length / 2), p.length - 1]) {
          const keep = p[i];
          const h = 1e-2;
          p[i] = keep + h;
          const up = studentGradients(layers, x, 4, targets, loss).loss;
          p[i] = keep - h;
          const down = studentGradients(layers, x, 4, targets, loss).loss;
          p[i] = keep;
          const numeric = (up - down) / (2 * h);
          assert.ok(
            Math.abs(numeric - grads[k][i]) <= 2e-3 + 0.02 * Math.abs(numeric),
            `${loss} param ${k}[${i}]: analytic ${grads[k][i]}, numeric ${numeric}`,
          );
          checked++;
        }
      });
      assert.equal(checked, 24);
    }
  });
});

describe('architectures Ferry cannot train', () => {
  const externalMessage = /distillation needs an external training job for this architecture/;

  test('a CNN is declined with the external-training message, and nothing claims to have run', async () => {
    const cnn = generateCnnModel({
      inputShape: [3, 16, 16],
      convs: [{ channels: 8 }, { channels: 16, stride: 2 }],
      classes: 10,
    });
    const ctx = context(cnn);
    const check = distillMlp.applicability(ctx.analysis, ctx.target);
    assert.equal(check.ok, false);
    const r = await distillMlp.apply(cnn, ctx);
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, externalMessage);
    assert.match((r as { reason: string }).reason, /Conv/);
    assert.match((r as { reason: string }).reason, /nothing was trained here/);
  });

  test('an MLP-like graph with a residual connection is declined by the structural check', async () => {
    const mlp = buildMlpModel({ inputDim: 16, hiddenDims: [16, 16], outputDim: 4 });
    const g = mlp.graph!;
    // layer1 adds its input back (a skip connection): no longer a plain chain.
    const add1 = g.node!.findIndex((n) => n.name === 'layer1_add');
    g.node!.splice(add1 + 1, 0, makeNode('Add', ['layer1_pre', 'layer0_out'], ['layer1_res'], { name: 'residual' }));
    g.node!.find((n) => n.name === 'layer1_relu')!.input = ['layer1_res'];
    g.value_info = [tensorValueInfo('layer1_res', TensorDataType.FLOAT, ['batch', 16])];
    const bytes = encodeModel(mlp);
    await runBatches(bytes, [{ input: new ort.Tensor('float32', new Float32Array(16), [1, 16]) }]);
    const r = await distillMlp.apply(bytes, context(bytes));
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, externalMessage);
    assert.match((r as { reason: string }).reason, /read 2 times|branching|feeds Add/);
  });
});
