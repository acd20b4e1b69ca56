/**
 * int8-static: QDQ quantization with calibration, checked by running every result in onnxruntime-node and by
 * asking onnxruntime what it fused the Q/DQ groups into (the 'extended' optimized graph).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../lib/onnx/analyze';
import { attr, irVersionForOpset, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { buildCnnModel, generateCnnModel } from '../../lib/onnx/cnn';
import { generateMlpModel, seededUniform } from '../../lib/onnx/generate';
import { isDefaultDomain } from '../../lib/onnx/graph';
import { decodeModel, encodeModel, type OnnxModel, type TensorProto } from '../../lib/onnx/model';
import { upgradeDefaultOpset } from '../../lib/onnx/opsetUpgrade';
import { float32Tensor, TensorDataType } from '../../lib/onnx/tensor';
import type { CalibrationSample, TechniqueContext, TechniqueResult } from '../../lib/optimize/technique';
import {
  calibrateRanges,
  entropyThresholdBins,
  generateCalibrationData,
  percentileRange,
} from '../../lib/optimize/techniques/calibration';
import { int8Static, quantizeStaticQdq, unfusedQdqNodes } from '../../lib/optimize/techniques/int8Static';
import { agreementOf, type OrtFeeds, runBatches } from '../../lib/optimize/techniques/modelAgreement';

ort.env.logLevel = 'error';

let workDir: string;
before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ferry-int8-static-'));
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

/** Calibration samples as a user would supply them: `count` batches of `batch` rows, uniform in [-1, 1). */
function calibrationSamples(dims: number[], count: number, seed: number): CalibrationSample[] {
  const rand = seededUniform(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => ({
    input: { dims, data: Float32Array.from({ length: n }, () => rand() * 2 - 1) },
  }));
}

/** Held-out inputs (a seed calibration never saw). */
function heldOut(dims: number[], count: number, seed: number): OrtFeeds[] {
  return calibrationSamples(dims, count, seed).map((s) => ({ input: new ort.Tensor('float32', s.input.data, dims) }));
}

async function agreement(original: Uint8Array, candidate: Uint8Array, batches: OrtFeeds[]) {
  return agreementOf(await runBatches(original, batches), await runBatches(candidate, batches));
}

/** Op types of the graph onnxruntime runs after its portable ('extended') optimizations. */
async function fusedOps(model: Uint8Array): Promise<string[]> {
  const path = join(workDir, `fused-${Math.random().toString(36).slice(2)}.onnx`);
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'extended',
    optimizedModelFilePath: path,
    logSeverityLevel: 3,
  });
  await session.release();
  return (decodeModel(await readFile(path)).graph?.node ?? []).map((n) =>
    isDefaultDomain(n.domain) ? n.op_type! : `${n.domain}.${n.op_type}`,
  );
}

function defaultOpset(model: OnnxModel): number {
  return Number(model.opset_import?.find((o) => isDefaultDomain(o.domain))?.version);
}

const CNN_SPEC = {
  inputShape: [3, 16, 16] as [number, number, number],
  convs: [{ channels: 16 }, { channels: 32, stride: 2 }],
  classes: 10,
  opset: 9,
};

describe('CNN at opset 9 (Conv+Relu+Conv+Relu+Flatten+Gemm), with user calibration data', () => {
  const original = generateCnnModel(CNN_SPEC);
  let result: Extract<TechniqueResult, { applied: true }>;

  before(async () => {
    result = applied(
      await int8Static.apply(original, context(original, { calibration: calibrationSamples([4, 3, 16, 16], 8, 11) })),
    );
  });

  test('the opset is raised to 13 and the graph carries int8 weights behind DequantizeLinear', () => {
    const model = decodeModel(result.model);
    assert.equal(defaultOpset(model), 13);
    assert.ok(Number(model.ir_version) >= 7);
    assert.ok(
      result.notes.some((n) => n.includes('opset raised from 9 to 13')),
      result.notes.join('\n'),
    );
    const g = model.graph!;
    const ops = g.node!.map((n) => n.op_type);
    assert.ok(ops.filter((o) => o === 'QuantizeLinear').length >= 2, ops.join(' '));
    assert.ok(!ops.includes('Relu'), 'both Relus are folded into QuantizeLinear');
    const inits = new Map(g.initializer!.map((t) => [t.name, t]));
    for (const w of ['conv0.weight', 'conv1.weight', 'fc.weight']) {
      assert.ok(!inits.has(w), `float ${w} is gone`);
      const q = inits.get(`${w}_quantized`);
      assert.equal(q?.data_type, TensorDataType.INT8, `${w} is int8`);
      assert.equal(
        inits.get(`${w}_scale`)?.dims?.[0],
        w === 'fc.weight' ? 10 : w === 'conv0.weight' ? 16 : 32,
        `${w} has one scale per output channel`,
      );
    }
    // The int32 bias is stored as is, or in 16 bits and widened by a Cast to int32 when its values fit.
    const biasCast = g.node!.find((n) => n.op_type === 'Cast' && n.output?.[0] === 'conv0.bias_quantized');
    if (biasCast) {
      assert.equal(inits.get(biasCast.input![0])?.data_type, TensorDataType.INT16, 'Conv bias is stored in 16 bits');
      assert.equal(
        Number(biasCast.attribute?.find((a) => a.name === 'to')?.i),
        TensorDataType.INT32,
        'Conv bias is widened to int32',
      );
    } else {
      assert.equal(inits.get('conv0.bias_quantized')?.data_type, TensorDataType.INT32, 'Conv bias is int32');
    }
  });

  test('onnxruntime fuses it into QLinearConv and QGemm', async () => {
    const ops = await fusedOps(result.model);
    assert.equal(ops.filter((o) => o.endsWith('QLinearConv')).length, 2, ops.join(' '));
    assert.ok(ops.includes('com.microsoft.QGemm'), ops.join(' '));
    assert.ok(!ops.includes('Conv') && !ops.includes('Gemm'), `no float Conv/Gemm left: ${ops.join(' ')}`);
  });

  test('it is about 3.5x smaller and agrees with the original on held-out inputs (cosine ≥ 0.99)', async () => {
    assert.ok(original.length / result.model.length > 3.4, `${original.length} → ${result.model.length}`);
    const a = await agreement(original, result.model, heldOut([4, 3, 16, 16], 8, 99));
    assert.ok(a.cosine >= 0.99, `cosine ${a.cosine}`);
    assert.ok(a.maxAbsError < 0.5, `max abs error ${a.maxAbsError}`);
    assert.ok((a.top1 ?? 0) >= 0.9, `top-1 ${a.top1}`);
  });

  test('weights from Constant nodes and a MatMul+Add head quantize the same way', async () => {
    const model = generateCnnModel({ ...CNN_SPEC, weightsIn: 'constants', head: 'matmul', softmax: true });
    const r = applied(
      await int8Static.apply(model, context(model, { calibration: calibrationSamples([4, 3, 16, 16], 8, 11) })),
    );
    const g = decodeModel(r.model).graph!;
    assert.ok(
      !g.node!.some((n) => n.op_type === 'Constant' && n.output?.[0] === 'conv0.weight'),
      'float Constant weight removed',
    );
    assert.ok(
      g.node!.some((n) => n.op_type === 'Gemm'),
      'MatMul + Add became one Gemm',
    );
    const ops = await fusedOps(r.model);
    assert.equal(ops.filter((o) => o.endsWith('QLinearConv')).length, 2, ops.join(' '));
    assert.ok(ops.includes('com.microsoft.QGemm'), ops.join(' '));
    const a = await agreement(model, r.model, heldOut([4, 3, 16, 16], 8, 98));
    assert.ok(a.cosine >= 0.99, `cosine ${a.cosine}`);
  });
});

describe('generated MLPs', () => {
  const mlp = generateMlpModel({
    inputDim: 64,
    hiddenDims: [256, 256],
    outputDim: 10,
    opset: 9,
    weightsIn: 'constants',
  });
  const calibration = calibrationSamples([16, 64], 8, 5);

  test('minmax, percentile and entropy calibration all give a model that runs and agrees (cosine ≥ 0.99)', async () => {
    for (const calibrationMethod of ['minmax', 'percentile', 'entropy']) {
      const r = applied(await int8Static.apply(mlp, context(mlp, { calibration, options: { calibrationMethod } })));
      assert.ok(
        r.notes.some((n) => n.startsWith(`calibration: ${calibrationMethod}`)),
        r.notes.join('\n'),
      );
      const ops = await fusedOps(r.model);
      assert.equal(ops.filter((o) => o === 'com.microsoft.QGemm').length, 3, `${calibrationMethod}: ${ops.join(' ')}`);
      const a = await agreement(mlp, r.model, heldOut([16, 64], 4, 77));
      assert.ok(a.cosine >= 0.99, `${calibrationMethod}: cosine ${a.cosine}`);
    }
  });

  test('percentile clips the tails minmax keeps; both come from the same observed range', async () => {
    const model = generateMlpModel({ inputDim: 64, hiddenDims: [256, 256], outputDim: 10 });
    const inputs = analyzeModel(decodeModel(model)).inputs;
    const run = async (calibrationMethod: 'minmax' | 'percentile') =>
      (await quantizeStaticQdq(model, { options: { calibrationMethod, percentile: 99 }, inputs, workDir })).report
        .activations;
    const minmax = await run('minmax');
    const percentile = await run('percentile');
    for (const name of ['layer0_out', 'layer1_out']) {
      assert.equal(percentile[name].observedMax, minmax[name].observedMax, name);
      assert.equal(minmax[name].max, minmax[name].observedMax, `minmax keeps the whole range of ${name}`);
      assert.ok(
        percentile[name].max < minmax[name].max,
        `${name}: percentile ${percentile[name].max} < minmax ${minmax[name].max}`,
      );
      assert.equal(minmax[name].zeroPoint, 0, `${name} is a Relu output: zero point at the uint8 minimum`);
    }
  });

  test('int8 activations and per-tensor weights (opset 11 kept, no upgrade) also run', async () => {
    const model = generateMlpModel({ inputDim: 64, hiddenDims: [128], outputDim: 10, opset: 11 });
    for (const options of [{ activationType: 'int8' }, { perChannel: false }]) {
      const r = applied(await int8Static.apply(model, context(model, { calibration, options })));
      const m = decodeModel(r.model);
      assert.equal(defaultOpset(m), options.perChannel === false ? 11 : 13, JSON.stringify(options));
      const a = await agreement(model, r.model, heldOut([16, 64], 4, 78));
      assert.ok(a.cosine >= 0.99, `${JSON.stringify(options)}: cosine ${a.cosine}`);
    }
  });

  test('without calibration data it generates inputs from the specs and says the ranges are weaker', async () => {
    const r = applied(await int8Static.apply(mlp, context(mlp)));
    assert.ok(
      r.notes.some((n) => n.includes('generated') && n.includes('weaker ranges')),
      r.notes.join('\n'),
    );
    const a = await agreement(mlp, r.model, heldOut([16, 64], 4, 79));
    assert.ok(a.cosine >= 0.99, `cosine ${a.cosine}`);
  });

  test('MatMul on a 3-D input keeps its MatMul, with a quantized output (QLinearMatMul)', async () => {
    const rand = seededUniform(4);
    const w = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
    const model = encodeModel({
      ir_version: irVersionForOpset(13),
      opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'seq-mlp',
        node: [
          makeNode('MatMul', ['input', 'w0'], ['m0'], { name: 'mm0' }),
          makeNode('Add', ['m0', 'b0'], ['a0'], { name: 'add0' }),
          makeNode('Relu', ['a0'], ['r0'], { name: 'relu0' }),
          makeNode('MatMul', ['r0', 'w1'], ['output'], { name: 'mm1' }),
        ],
        initializer: [
          float32Tensor('w0', [32, 64], w(32 * 64, 0.3)),
          float32Tensor('b0', [64], w(64, 0.1)),
          float32Tensor('w1', [64, 16], w(64 * 16, 0.2)),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 'seq', 32])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 'seq', 16])],
      },
    });
    const r = applied(await int8Static.apply(model, context(model)));
    const ops = await fusedOps(r.model);
    assert.equal(ops.filter((o) => o === 'QLinearMatMul').length, 2, ops.join(' '));
    const rand2 = seededUniform(8);
    const feeds = [
      {
        input: new ort.Tensor(
          'float32',
          Float32Array.from({ length: 2 * 5 * 32 }, () => rand2() * 2 - 1),
          [2, 5, 32],
        ),
      },
    ];
    const a = await agreement(model, r.model, feeds);
    assert.ok(a.cosine >= 0.99, `cosine ${a.cosine}`);
  });
});

describe('Adds downstream of quantized nodes', () => {
  test('bias and residual Adds after a 3-D MatMul run as QLinearAdd, and the block still agrees', async () => {
    const rand = seededUniform(21);
    const w = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
    // x → MatMul+bias → Relu → MatMul+bias → + x (residual) → output, on [batch, seq, 32].
    const model = encodeModel({
      ir_version: irVersionForOpset(13),
      opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'residual',
        node: [
          makeNode('MatMul', ['input', 'w0'], ['m0'], { name: 'mm0' }),
          makeNode('Add', ['m0', 'b0'], ['a0'], { name: 'bias0' }),
          makeNode('Relu', ['a0'], ['r0'], { name: 'relu0' }),
          makeNode('MatMul', ['r0', 'w1'], ['m1'], { name: 'mm1' }),
          makeNode('Add', ['m1', 'b1'], ['a1'], { name: 'bias1' }),
          makeNode('Add', ['a1', 'input'], ['output'], { name: 'residual' }),
        ],
        initializer: [
          float32Tensor('w0', [32, 64], w(32 * 64, 0.3)),
          float32Tensor('b0', [64], w(64, 0.1)),
          float32Tensor('w1', [64, 32], w(64 * 32, 0.2)),
          float32Tensor('b1', [32], w(32, 0.1)),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 'seq', 32])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 'seq', 32])],
      },
    });
    const r = applied(await int8Static.apply(model, context(model)));
    assert.ok(
      r.notes.some((n) => n.includes('3 Add node(s) downstream run in 8 bits')),
      r.notes.join('\n'),
    );
    const ops = await fusedOps(r.model);
    assert.equal(ops.filter((o) => o === 'com.microsoft.QLinearAdd').length, 3, ops.join(' '));
    assert.equal(ops.filter((o) => o === 'QLinearMatMul').length, 2, ops.join(' '));
    const rand2 = seededUniform(9);
    const feeds = [
      {
        input: new ort.Tensor(
          'float32',
          Float32Array.from({ length: 2 * 6 * 32 }, () => rand2() * 2 - 1),
          [2, 6, 32],
        ),
      },
    ];
    const a = await agreement(model, r.model, feeds);
    assert.ok(a.cosine >= 0.99, `cosine ${a.cosine}`);
    // With the option off the Adds stay float32.
    const off = applied(await int8Static.apply(model, context(model, { options: { quantizeAdd: false } })));
    assert.ok(!(await fusedOps(off.model)).includes('com.microsoft.QLinearAdd'));
  });
});

describe('when it does not apply', () => {
  test('a model without Conv, MatMul or Gemm is not applicable, with the reason', async () => {
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'no-weights',
        node: [makeNode('Add', ['input', 'bias'], ['sum']), makeNode('Relu', ['sum'], ['output'])],
        initializer: [float32Tensor('bias', [4], [1, 2, 3, 4])],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 4])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 4])],
      },
    });
    const r = await int8Static.apply(model, context(model));
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, /no Conv, MatMul or Gemm/);
  });

  test('a MatMul whose weight is computed at run time is not quantized, and says why', async () => {
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'scores',
        node: [
          makeNode('Transpose', ['input'], ['t'], { attributes: [attr.ints('perm', [1, 0])] }),
          makeNode('MatMul', ['input', 't'], ['output'], { name: 'scores' }),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, [4, 8])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, [4, 4])],
      },
    });
    const r = await int8Static.apply(model, context(model));
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, /scores \(MatMul\): its weight is not a constant/);
  });

  test('an opset-9 model whose ops cannot move to opset 10+ (Upsample) is not applicable, naming the op', async () => {
    const cnn = buildCnnModel({ inputShape: [1, 8, 8], convs: [{ channels: 4 }], classes: 2, opset: 9 });
    const g = cnn.graph!;
    // Upsample the first Relu's output by 1 (a no-op in value, but an op whose meaning changed at opset 10).
    g.initializer!.push(float32Tensor('scales', [4], [1, 1, 1, 1]));
    const relu = g.node!.find((n) => n.op_type === 'Relu')!;
    const flatten = g.node!.find((n) => n.op_type === 'Flatten')!;
    g.node!.splice(
      g.node!.indexOf(flatten),
      0,
      makeNode('Upsample', [relu.output![0], 'scales'], ['up'], {
        name: 'upsample',
        attributes: [attr.string('mode', 'nearest')],
      }),
    );
    flatten.input = ['up'];
    const model = encodeModel(cnn);
    await runBatches(model, heldOut([1, 1, 8, 8], 1, 1)); // the fixture itself runs
    const r = await int8Static.apply(model, context(model));
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, /QuantizeLinear needs opset 13.*Upsample/s);
  });

  test('the fusion check finds a quantized Conv onnxruntime cannot fuse (no QuantizeLinear after it)', async () => {
    const q = (name: string, dims: number[], values: number[], type: number): TensorProto => ({
      name,
      dims,
      data_type: type,
      raw_data: type === TensorDataType.INT8 ? new Uint8Array(Int8Array.from(values).buffer) : Uint8Array.from(values),
    });
    const model = encodeModel({
      ir_version: 7,
      opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'unfusable',
        node: [
          makeNode('QuantizeLinear', ['input', 'xs', 'xz'], ['xq']),
          makeNode('DequantizeLinear', ['xq', 'xs', 'xz'], ['xd']),
          makeNode('DequantizeLinear', ['wq', 'ws', 'wz'], ['wd'], { attributes: [attr.int('axis', 0)] }),
          makeNode('Conv', ['xd', 'wd'], ['output'], { name: 'conv' }),
        ],
        initializer: [
          float32Tensor('xs', [], [0.01]),
          q('xz', [], [128], TensorDataType.UINT8),
          q('wq', [2, 1, 1, 1], [10, -20], TensorDataType.INT8),
          float32Tensor('ws', [2], [0.1, 0.1]),
          q('wz', [2], [0, 0], TensorDataType.INT8),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, [1, 1, 4, 4])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, [1, 2, 4, 4])],
      },
    });
    assert.deepEqual(await unfusedQdqNodes(model, ['conv'], workDir), ['conv']);
    const cnn = generateCnnModel({ inputShape: [1, 8, 8], convs: [{ channels: 4 }], classes: 2 });
    const r = await quantizeStaticQdq(cnn, { inputs: analyzeModel(decodeModel(cnn)).inputs, workDir });
    assert.deepEqual(
      await unfusedQdqNodes(
        r.model,
        r.report.quantized.map((x) => x.nameInModel),
        workDir,
      ),
      [],
    );
  });

  test('bad options are refused with a message', async () => {
    const mlp = generateMlpModel({ inputDim: 8, hiddenDims: [8], outputDim: 2 });
    const r = await int8Static.apply(mlp, context(mlp, { options: { calibrationMethod: 'magic' } }));
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, /calibrationMethod must be one of minmax, percentile, entropy/);
  });
});

describe('calibration', () => {
  test('percentileRange clips the stated share from each tail', () => {
    const hist = new Float64Array(100).fill(10); // 1000 values over [0, 100), 10 per unit
    // 90% kept: 50 values (5 bins) clipped from each side.
    assert.deepEqual(percentileRange(hist, 0, 100, 90), [5, 95]);
    // Clipping never cuts into a bin that holds kept values: 45 per side means only 4 whole bins go.
    assert.deepEqual(percentileRange(hist, 0, 100, 91), [4, 96]);
    assert.deepEqual(percentileRange(hist, -50, 50, 100), [-50, 50]);
  });

  test('entropy keeps the whole range of a smooth distribution and clips a far outlier', () => {
    const uniform = new Float64Array(2048).fill(100);
    assert.equal(entropyThresholdBins(uniform, 128), 2048);
    const outlier = new Float64Array(2048);
    for (let i = 0; i < 512; i++) outlier[i] = 1000 * Math.exp(-i / 100);
    outlier[2047] = 1; // one value 4x beyond the rest
    const bins = entropyThresholdBins(outlier, 128);
    assert.ok(bins < 1024, `threshold ${bins} of 2048 bins`);
  });

  test('calibrateRanges measures intermediate tensors through an augmented copy written to the work dir', async () => {
    const model = generateMlpModel({ inputDim: 16, hiddenDims: [32], outputDim: 4 });
    const data = generateCalibrationData(analyzeModel(decodeModel(model)).inputs, { batches: 4, batchSize: 8 });
    const r = await calibrateRanges(model, ['input', 'layer0_out', 'output'], data, { workDir, method: 'minmax' });
    const augmented = decodeModel(await readFile(r.augmentedModelPath));
    assert.deepEqual(
      augmented.graph!.output!.map((o) => o.name),
      ['output', 'layer0_out'],
    );
    assert.ok(r.ranges.get('input')!.min >= -1 && r.ranges.get('input')!.max < 1);
    assert.equal(r.ranges.get('layer0_out')!.min, 0, 'a Relu output starts at 0');
    // The ranges are the real extremes: running the model on the same data never leaves them.
    const outs = await runBatches(model, data.batches);
    const all = outs.flatMap((o) => Array.from(o.output.data as Float32Array));
    assert.equal(Math.max(...all), r.ranges.get('output')!.max);
    assert.equal(Math.min(...all), r.ranges.get('output')!.min);
  });

  test('upgradeDefaultOpset rewrites attribute-to-input ops and keeps what the model computes', async () => {
    const model: OnnxModel = {
      ir_version: 4,
      opset_import: [{ domain: '', version: 9 }],
      graph: {
        name: 'upgrade',
        node: [
          makeNode('Unsqueeze', ['input'], ['u'], { attributes: [attr.ints('axes', [0])] }),
          makeNode('Squeeze', ['u'], ['s'], { attributes: [attr.ints('axes', [0])] }),
          makeNode('Slice', ['s'], ['sl'], {
            attributes: [attr.ints('starts', [1]), attr.ints('ends', [3]), attr.ints('axes', [1])],
          }),
          makeNode('Clip', ['sl'], ['c'], { attributes: [attr.float('min', -0.5), attr.float('max', 0.5)] }),
          makeNode('Pad', ['c'], ['p'], { attributes: [attr.ints('pads', [0, 1, 0, 1]), attr.float('value', 2)] }),
          makeNode('ReduceSum', ['p'], ['r'], { attributes: [attr.ints('axes', [1]), attr.int('keepdims', 1)] }),
          makeNode('Softmax', ['p'], ['sm'], { attributes: [attr.int('axis', 0)] }),
          makeNode('Add', ['sm', 'r'], ['output']),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, [2, 4])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, [2, 4])],
      },
    };
    const before = encodeModel(model);
    const upgraded = decodeModel(before);
    const r = upgradeDefaultOpset(upgraded, 13);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    const after = encodeModel(upgraded);
    const feeds = heldOut([2, 4], 1, 3);
    const [a] = await runBatches(before, feeds);
    const [b] = await runBatches(after, feeds);
    assert.deepEqual(Array.from(b.output.data as Float32Array), Array.from(a.output.data as Float32Array));
    assert.equal(defaultOpset(upgraded), 13);
  });
});
