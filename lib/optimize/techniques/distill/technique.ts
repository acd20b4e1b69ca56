/**
 * distill-mlp as an optimization technique: for an MLP (detect.ts), computes the teacher's logits in onnxruntime on
 * the training inputs, trains the student (training.ts), exports it (export.ts) and measures it against the teacher
 * in onnxruntime on held-out inputs: max abs error, cosine similarity, top-1 agreement.
 *
 * Training inputs are the user's calibration samples (topped up with jittered copies when there are few) or
 * generated uniform [-1, 1) rows; generated inputs teach the student the teacher's function on that box, not on real
 * data, so agreement on real inputs can be lower. Any other architecture (convolutions, attention, recurrent or
 * branching graphs) needs a training job with the model's own framework and data: the technique says so and does not
 * claim to have run.
 */
import * as ort from 'onnxruntime-node';
import type { ModelAnalysis } from '../../../onnx/analyze';
import { seededUniform } from '../../../onnx/mlp';
import { decodeModel } from '../../../onnx/model';
import type { OptimizationTechnique, TechniqueContext, TechniqueResult } from '../../technique';
import { augmentWithOutputs, generateCalibrationData, userCalibrationData } from '../calibration';
import { type Agreement, agreementOf, describeAgreement, type OrtFeeds, runBatches } from '../modelAgreement';
import { detectMlp } from './detect';
import { exportStudent } from './export';
import { type DistillOptions, readOptions } from './options';
import { distillLoss, randomStudent, studentForward, studentFromTeacherUnits, trainStudent } from './training';

export const DISTILL_MLP_ID = 'distill-mlp';

export function externalTrainingReason(why: string): string {
  return (
    `distillation needs an external training job for this architecture: Ferry trains students itself only for MLP classifiers and regressors ` +
    `(a chain of MatMul/Gemm + bias + activation), and this model is not one: ${why}. Train a smaller student with the model's own framework ` +
    `and data (typically 2-4x fewer parameters for a few points of accuracy), then deploy it as a new version; nothing was trained here.`
  );
}

/** Rows of a [rows, features] float32 input, from onnxruntime feeds. */
function rowsOf(batches: OrtFeeds[], input: string, features: number): Float32Array {
  const out = concatFloat32(batches.map((b) => b[input].data as Float32Array));
  if (out.length % features !== 0) throw new Error(`input '${input}' does not split into rows of ${features}`);
  return out;
}

function concatFloat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs a model over rows in chunks (of the fixed batch size when the input has one) and concatenates `output`. */
async function runRows(
  model: Uint8Array,
  input: string,
  output: string,
  rows: Float32Array,
  rowDims: number[],
  fixedBatch: number | undefined,
): Promise<Float32Array> {
  const features = rowDims.reduce((a, b) => a * b, 1);
  const count = rows.length / features;
  const chunk = fixedBatch ?? 256;
  const batches: OrtFeeds[] = [];
  for (let r = 0; r < count; r += chunk) {
    const n = fixedBatch ?? Math.min(chunk, count - r);
    if (r + n > count) break;
    batches.push({ [input]: new ort.Tensor('float32', rows.slice(r * features, (r + n) * features), [n, ...rowDims]) });
  }
  const outs = await runBatches(model, batches);
  return concatFloat32(outs.map((o) => o[output].data as Float32Array));
}

function parameterCount(layers: Array<{ inDim: number; outDim: number; hasBias?: boolean; bias?: unknown }>): number {
  return layers.reduce(
    (a, l) => a + l.inDim * l.outDim + ('hasBias' in l ? (l.hasBias ? l.outDim : 0) : l.bias ? l.outDim : 0),
    0,
  );
}

export const distillMlp: OptimizationTechnique = {
  id: DISTILL_MLP_ID,
  title: 'Distillation into a narrower MLP',
  description:
    "For MLP classifiers and regressors: trains a student with narrower hidden layers (half width by default) on the teacher's outputs, in TypeScript, " +
    'and exports it with the same inputs and outputs. Other architectures need an external training job; the technique says so and does not run.',
  expectedEffect(analysis: ModelAnalysis): string {
    if ((analysis.opHistogram.Conv ?? 0) > 0 || (analysis.opHistogram.Softmax ?? 0) > 1) {
      return 'Needs an external training job for this architecture (Ferry trains MLP students only): typically 2-4x fewer parameters for a few points of accuracy.';
    }
    return 'For an MLP: about 2-4x fewer parameters (hidden widths halved) and a similar latency gain; outputs agree with the teacher only approximately (top-1 agreement reported).';
  },
  applicability(analysis: ModelAnalysis): { ok: true } | { ok: false; reason: string } {
    const hist = analysis.opHistogram;
    const blockers = Object.keys(hist).filter(
      (op) =>
        ![
          'MatMul',
          'Gemm',
          'Add',
          'Relu',
          'LeakyRelu',
          'Tanh',
          'Sigmoid',
          'Softmax',
          'LogSoftmax',
          'Constant',
          'Flatten',
          'Identity',
          'Dropout',
        ].includes(op),
    );
    if (blockers.length) return { ok: false, reason: externalTrainingReason(`it uses ${blockers.sort().join(', ')}`) };
    if (!(hist.MatMul ?? 0) && !(hist.Gemm ?? 0))
      return { ok: false, reason: externalTrainingReason('it has no MatMul or Gemm layer') };
    return { ok: true };
  },
  async apply(bytes: Uint8Array, ctx: TechniqueContext): Promise<TechniqueResult> {
    const started = Date.now();
    const applicable = distillMlp.applicability(ctx.analysis, ctx.target);
    if (!applicable.ok) return { applied: false, reason: applicable.reason };
    let opts: DistillOptions;
    try {
      opts = readOptions(ctx.options);
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }
    const teacherModel = decodeModel(bytes);
    const mlp = detectMlp(teacherModel);
    if (typeof mlp === 'string') return { applied: false, reason: externalTrainingReason(mlp) };
    const hidden = mlp.layers.slice(0, -1).map((l) => l.outDim);
    const widths = opts.hiddenDims ?? hidden.map((h) => Math.max(1, Math.round(h * (opts.widthFactor ?? 0.5))));
    if (widths.length !== hidden.length)
      return {
        applied: false,
        reason: `option hiddenDims has ${widths.length} entries; the teacher has ${hidden.length} hidden layers`,
      };
    if (widths.every((w, i) => w >= hidden[i]))
      return {
        applied: false,
        reason: `the student's hidden widths [${widths}] are not narrower than the teacher's [${hidden}]`,
      };
    const features = mlp.layers[0].inDim;
    const inputSpec = ctx.analysis.inputs.find((i) => i.name === mlp.input);
    const dim0 = inputSpec?.shape[0];
    const fixedBatch = typeof dim0 === 'number' && dim0 > 0 ? dim0 : undefined;
    const budget = opts.timeBudgetMs ?? 60_000;
    const samples = opts.samples ?? 4096;
    const seed = opts.seed ?? 1;
    const report = (f: number, d: string) => ctx.onProgress?.(Math.min(1, f), d);

    // Training and held-out inputs.
    let trainRows: Float32Array;
    let holdRows: Float32Array;
    let dataNote: string;
    try {
      const genBatch = fixedBatch ?? 256;
      const generated = (count: number, s: number) =>
        rowsOf(
          generateCalibrationData(ctx.analysis.inputs, {
            batches: Math.ceil(count / genBatch),
            batchSize: genBatch,
            seed: s,
          }).batches,
          mlp.input,
          features,
        );
      if (ctx.calibration?.length) {
        const user = rowsOf(userCalibrationData(ctx.analysis.inputs, ctx.calibration).batches, mlp.input, features);
        const userCount = user.length / features;
        const holdCount = Math.max(1, Math.min(Math.floor(userCount / 5), opts.holdoutRows ?? 1024));
        holdRows = user.slice(0, holdCount * features);
        const base = user.slice(holdCount * features);
        const baseCount = base.length / features;
        if (baseCount === 0)
          return { applied: false, reason: 'too few calibration samples to train on (need at least 2 rows)' };
        const total = Math.max(samples, baseCount);
        trainRows = new Float32Array(total * features);
        trainRows.set(base);
        // Few real rows: add jittered copies (Gaussian noise of 5% of each feature's spread).
        const rand = seededUniform(seed + 7);
        const spread = new Float32Array(features);
        for (let f = 0; f < features; f++) {
          let lo = Infinity;
          let hi = -Infinity;
          for (let r = 0; r < baseCount; r++) {
            lo = Math.min(lo, base[r * features + f]);
            hi = Math.max(hi, base[r * features + f]);
          }
          spread[f] = hi > lo ? hi - lo : 1;
        }
        for (let r = baseCount; r < total; r++) {
          const src = r % baseCount;
          for (let f = 0; f < features; f++) {
            const gauss = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
            trainRows[r * features + f] = base[src * features + f] + 0.05 * spread[f] * gauss;
          }
        }
        dataNote = `${baseCount} calibration rows${total > baseCount ? ` + ${total - baseCount} jittered copies` : ''}; ${holdCount} calibration rows held out`;
      } else {
        trainRows = generated(samples, seed + 100);
        holdRows = generated(opts.holdoutRows ?? 1024, seed + 200);
        dataNote = `${trainRows.length / features} generated rows (uniform in [-1, 1): the student learns the teacher on that box, not on real data); ${holdRows.length / features} generated rows held out`;
      }
      if (fixedBatch) {
        trainRows = trainRows.slice(0, Math.floor(trainRows.length / features / fixedBatch) * fixedBatch * features);
        holdRows = holdRows.slice(
          0,
          Math.max(fixedBatch, Math.floor(holdRows.length / features / fixedBatch) * fixedBatch) * features,
        );
      }
    } catch (err) {
      return { applied: false, reason: (err as Error).message };
    }

    // Teacher logits from onnxruntime.
    report(0.02, "computing the teacher's outputs in onnxruntime");
    let targets: Float32Array;
    let teacherHold: Float32Array;
    try {
      const teacherWithLogits = mlp.logits === mlp.output ? bytes : augmentWithOutputs(bytes, [mlp.logits]);
      targets = await runRows(teacherWithLogits, mlp.input, mlp.logits, trainRows, mlp.inputRowDims, fixedBatch);
      teacherHold = await runRows(bytes, mlp.input, mlp.output, holdRows, mlp.inputRowDims, fixedBatch);
    } catch (err) {
      return { applied: false, reason: `onnxruntime could not run the teacher: ${(err as Error).message}` };
    }
    const rows = trainRows.length / features;

    // Student: init and training within what is left of the budget (keep ~15% for export and the check).
    const student =
      (opts.init ?? 'teacher-units') === 'teacher-units'
        ? studentFromTeacherUnits(mlp.layers, widths)
        : randomStudent(mlp.layers, widths, seed);
    const trainBudget = Math.max(0, budget * 0.85 - (Date.now() - started));
    const loss = opts.loss ?? 'mse';
    const outDim = mlp.layers[mlp.layers.length - 1].outDim;
    const probe = Math.min(rows, 512);
    const lossOnProbe = () =>
      distillLoss(
        loss,
        studentForward(student, trainRows.subarray(0, probe * features), probe).at(-1)!,
        targets.subarray(0, probe * outDim),
        probe,
        outDim,
        opts.temperature ?? 2,
      ).loss;
    const startLoss = lossOnProbe();
    const trained = trainStudent(student, trainRows, targets, rows, {
      epochs: opts.epochs ?? 20,
      batchSize: opts.batchSize ?? 64,
      learningRate: opts.learningRate ?? 1e-3,
      loss,
      temperature: opts.temperature ?? 2,
      seed,
      timeBudgetMs: trainBudget,
      onProgress: (f, d) => report(0.05 + 0.85 * f, d),
    });
    if (trained.epochs === 0 && trained.lossHistory.length === 0) {
      return {
        applied: false,
        reason: `the time budget (${budget} ms) ran out before one training batch: raise timeBudgetMs`,
      };
    }

    // Export through the teacher's graph and check in onnxruntime on held-out rows.
    report(0.92, 'exporting the student and checking it in onnxruntime');
    const teacherParams = parameterCount(mlp.layers);
    const studentParams = parameterCount(student);
    const note = `distill-mlp: hidden [${hidden.join(', ')}] → [${widths.join(', ')}], ${trained.epochs} epochs, loss ${loss}`;
    let studentBytes: Uint8Array;
    let agreement: Agreement;
    try {
      studentBytes = exportStudent(bytes, student, note);
      const studentHold = await runRows(studentBytes, mlp.input, mlp.output, holdRows, mlp.inputRowDims, fixedBatch);
      const holdCount = holdRows.length / features;
      const asOutputs = (data: Float32Array) => [
        { [mlp.output]: new ort.Tensor('float32', data, [holdCount, outDim]) },
      ];
      agreement = agreementOf(asOutputs(teacherHold), asOutputs(studentHold));
    } catch (err) {
      return {
        applied: false,
        reason: `the exported student did not load or run in onnxruntime: ${(err as Error).message}`,
      };
    }
    report(1, 'done');
    const endLoss = lossOnProbe();
    return {
      applied: true,
      model: studentBytes,
      notes: [
        `student MLP: hidden widths [${hidden.join(', ')}] → [${widths.join(', ')}], parameters ${teacherParams} → ${studentParams} (${(teacherParams / studentParams).toFixed(2)}x fewer), ` +
          `size ${bytes.length} → ${studentBytes.length} bytes`,
        `trained in TypeScript on ${dataNote}: ${trained.epochs} epoch(s) of Adam (batch ${opts.batchSize ?? 64}, lr ${opts.learningRate ?? 1e-3}), ${loss} on the teacher's ${mlp.logits === mlp.output ? 'outputs' : `logits ('${mlp.logits}')`}, ` +
          `init ${opts.init ?? 'teacher-units'}, seed ${seed}; loss on the first ${probe} rows ${startLoss.toPrecision(3)} → ${endLoss.toPrecision(3)} in ${(trained.elapsedMs / 1000).toFixed(1)} s` +
          (trained.stoppedByBudget ? ` (stopped by the time budget of ${budget} ms)` : ''),
        `agreement with the teacher on ${holdRows.length / features} held-out rows, in onnxruntime: ${describeAgreement(agreement)}`,
      ],
    };
  },
};
