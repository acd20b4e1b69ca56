/**
 * The dynamic-batching decision: rows run alone against the same rows in a batch (real onnxruntime runs),
 * the decision rules, and the engine end to end — an MLP gets batching in its serving settings, a model
 * that mixes the rows of a batch does not, and the image manifest carries what was decided.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { modelIndexJson } from '../../lib/image/modelImage';
import { attr, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { generateMlpModel } from '../../lib/onnx/generate';
import { encodeModel, type OnnxModel } from '../../lib/onnx/model';
import { float32Tensor } from '../../lib/onnx/tensor';
import { runOptimizationEngine } from '../../lib/optimize/engine';
import { measureRowIndependence, rowsToCompare, sliceFeedRow } from '../../lib/optimize/rowIndependence';
import { decideServingBatching, MIN_GAIN } from '../../lib/optimize/servingBatching';
import type { AccuracyBudget, CandidateMeasurement } from '../../workflows/types';

const FLOAT = 1;

/** x [n, 8] → MatMul → h; y = h − mean over the batch of h: every row's answer depends on its batch mates. */
function batchMixingModel(): Uint8Array {
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'batch-mixing',
      node: [
        makeNode('MatMul', ['x', 'W'], ['h'], { name: 'mm' }),
        makeNode('ReduceMean', ['h'], ['m'], {
          name: 'mean',
          attributes: [attr.ints('axes', [0]), attr.int('keepdims', 1)],
        }),
        makeNode('Sub', ['h', 'm'], ['y'], { name: 'sub' }),
      ],
      initializer: [
        float32Tensor(
          'W',
          [8, 8],
          Array.from({ length: 64 }, (_, i) => Math.sin(i)),
        ),
      ],
      input: [tensorValueInfo('x', FLOAT, ['n', 8])],
      output: [tensorValueInfo('y', FLOAT, ['n', 8])],
    },
  };
  return encodeModel(model);
}

/** x [n, 4] → ReduceSum over the batch → y [1, 4]: the output has no batch dimension at all. */
function batchSumModel(): Uint8Array {
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'batch-sum',
      node: [makeNode('ReduceSum', ['x', 'axes'], ['y'], { name: 'sum', attributes: [attr.int('keepdims', 1)] })],
      initializer: [{ name: 'axes', dims: [1], data_type: 7, int64_data: [0] }],
      input: [tensorValueInfo('x', FLOAT, ['n', 4])],
      output: [tensorValueInfo('y', FLOAT, [1, 4])],
    },
  } as OnnxModel);
}

/** x [n, w] → Transpose → y [w, n]: both first dimensions dynamic, but the output's is not the batch. */
function transposeModel(): Uint8Array {
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'transpose',
      node: [makeNode('Transpose', ['x'], ['y'], { name: 't' })],
      input: [tensorValueInfo('x', FLOAT, ['n', 'w'])],
      output: [tensorValueInfo('y', FLOAT, ['w', 'n'])],
    },
  });
}

function randomFeeds(name: string, rows: number, width: number): Record<string, ort.Tensor> {
  const data = Float32Array.from({ length: rows * width }, (_, i) => Math.cos(i * 1.7) * 2);
  return { [name]: new ort.Tensor('float32', data, [rows, width]) };
}

async function independenceOf(model: Uint8Array, input: string, width: number, rows = 16) {
  const session = await ort.InferenceSession.create(model);
  try {
    const feeds = randomFeeds(input, rows, width);
    return await measureRowIndependence(session, feeds, rows, await session.run(feeds));
  } finally {
    await session.release();
  }
}

describe('row independence, measured in onnxruntime', () => {
  test('rows compared are first, middle and last; a row slice keeps the other dimensions', () => {
    assert.deepEqual(rowsToCompare(16), [0, 8, 15]);
    assert.deepEqual(rowsToCompare(1), [0]);
    const feeds = {
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 6 }, (_, i) => i),
        [3, 2],
      ),
      sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
    };
    const row = sliceFeedRow(feeds, 3, 2);
    assert.deepEqual(row.x.dims, [1, 2]);
    assert.deepEqual([...(row.x.data as Float32Array)], [4, 5]);
    assert.equal(row.sr, feeds.sr, 'an input without the batch dimension is passed as it is');
  });

  test('an MLP treats rows independently: alone and in a batch agree to rounding', async () => {
    const r = await independenceOf(
      generateMlpModel({ inputDim: 32, hiddenDims: [64], outputDim: 10, seed: 3 }),
      'input',
      32,
    );
    assert.equal(r.notRowShaped, undefined);
    assert.equal(r.rows, 3);
    assert.ok(r.maxAbsRef > 0.01, 'the outputs are not all zero');
    assert.ok(r.maxAbsDiff <= 1e-4 * Math.max(1, r.maxAbsRef), `max abs diff ${r.maxAbsDiff}`);
    assert.ok(r.minCosine > 0.99999);
  });

  test('a model that subtracts the batch mean mixes rows, and the difference shows', async () => {
    const r = await independenceOf(batchMixingModel(), 'x', 8);
    assert.equal(r.notRowShaped, undefined);
    assert.ok(r.maxAbsDiff > 0.1 * r.maxAbsRef, `max abs diff ${r.maxAbsDiff} against scale ${r.maxAbsRef}`);
  });

  test('a model whose declared output has no batch dimension is named as such', async () => {
    const r = await independenceOf(batchSumModel(), 'x', 4);
    assert.match(r.notRowShaped ?? '', /the server cannot batch it: output "y" has a fixed first dimension \(1\)/);
  });
});

test('a model whose output turns out not to be row-shaped at run time is named as such', async () => {
  const r = await independenceOf(transposeModel(), 'x', 4);
  assert.match(r.notRowShaped ?? '', /output "y" has shape \[4,16\] for a batch of 16/);
});

describe('the decision', () => {
  const budget: AccuracyBudget = { minCosine: 0.99, minTop1: 0.99 };
  const row = (batch1Rps: number, largeRps: number): CandidateMeasurement =>
    ({
      batch1: { p50Ms: 1, p95Ms: 1, meanMs: 1, iterations: 10, batchSize: 1, throughputPerSec: batch1Rps },
      largeBatch: { p50Ms: 1, p95Ms: 1, meanMs: 1, iterations: 10, batchSize: 16, throughputPerSec: largeRps },
    }) as CandidateMeasurement;
  const exact = { rows: 3, maxAbsDiff: 1e-7, maxAbsRef: 5, minCosine: 1 };

  test('independent rows and a real gain: on, at the measured batch size, without a queue delay', () => {
    const d = decideServingBatching({ original: exact, candidate: exact, row: row(1000, 4000), budget });
    assert.deepEqual(d.batching, { maxBatchSize: 16, maxQueueDelayMs: 0 });
    assert.match(d.note, /on .*4\.00x/);
  });

  test('off when the original mixes rows, even if the candidate looks fine', () => {
    const d = decideServingBatching({
      original: { ...exact, maxAbsDiff: 0.5 },
      candidate: exact,
      row: row(1000, 4000),
      budget,
    });
    assert.equal(d.batching, undefined);
    assert.match(d.note, /mixes rows/);
  });

  test("off when the candidate's rows drift past the budget in a batch (per-batch quantization scales)", () => {
    const d = decideServingBatching({
      original: exact,
      candidate: { ...exact, minCosine: 0.95 },
      row: row(1000, 4000),
      budget,
    });
    assert.equal(d.batching, undefined);
    assert.match(d.note, /cosine 0\.95000 < budget 0\.99/);
  });

  test('off when batching does not pay', () => {
    const d = decideServingBatching({
      original: exact,
      candidate: exact,
      row: row(1000, 1000 * (MIN_GAIN - 0.05)),
      budget,
    });
    assert.equal(d.batching, undefined);
    assert.match(d.note, /only 1\.20x/);
  });

  test('off without a large batch (fixed batch dimension)', () => {
    const fixed = { ...row(1000, 4000), largeBatch: undefined };
    assert.equal(decideServingBatching({ original: exact, candidate: exact, row: fixed, budget }).batching, undefined);
  });
});

describe('the engine', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-batching-test-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  const quick = { measureMs: 150, agreementSamples: 64 };

  test('an MLP is served with batching; the image manifest carries it', async () => {
    const model = generateMlpModel({ inputDim: 128, hiddenDims: [512, 512], outputDim: 16, seed: 5 });
    const { table } = await runOptimizationEngine({
      model,
      workDir: path.join(dir, 'mlp'),
      techniques: ['graph-optimize'],
      target: { threads: 1 },
      measure: quick,
    });
    const original = table.candidates.find((c) => c.id === 'original')!;
    assert.ok(original.batching, `the original should batch: ${original.notes.join('; ')}`);
    assert.equal(original.batching.maxBatchSize, 16);
    assert.ok(original.notes.some((n) => /dynamic batching on/.test(n)));
    const manifest = JSON.parse(
      modelIndexJson([{ name: 'mlp', version: '1', onnxPath: 'x', batching: original.batching }]),
    );
    assert.deepEqual(manifest.models[0].batching, { maxBatchSize: 16, maxQueueDelayMs: 0 });
  });

  test('a model that mixes rows is never served with batching, and says why', async () => {
    const { table } = await runOptimizationEngine({
      model: batchMixingModel(),
      workDir: path.join(dir, 'mix'),
      techniques: ['graph-optimize'],
      target: { threads: 1 },
      measure: quick,
    });
    for (const c of table.candidates.filter((x) => x.state === 'measured')) {
      assert.equal(c.batching, undefined, `${c.id} must not batch`);
    }
    const original = table.candidates.find((c) => c.id === 'original')!;
    assert.ok(
      original.notes.some((n) => /dynamic batching off: the original model mixes rows/.test(n)),
      original.notes.join('; '),
    );
  });
});
