import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeModel } from '../../lib/onnx/analyze';
import {
  exampleModelSpec,
  generateMlpModel,
  type MlpSpec,
  mlpParameterCount,
  mlpWeights,
  seededUniform,
} from '../../lib/onnx/generate';
import { decodeModel, tensorToFloat32 } from '../../lib/onnx/model';
import { float32Input, runModel } from './ortSession';

/** The MLP computed the obvious way, in float64, from weights read back out of the ONNX file. */
function referenceForward(bytes: Uint8Array, x: Float32Array, batch: number, softmax: boolean): Float64Array {
  const model = decodeModel(bytes);
  const graph = model.graph!;
  const tensors = new Map<string, Float32Array>();
  for (const t of graph.initializer ?? []) tensors.set(t.name!, tensorToFloat32(t));
  for (const n of graph.node ?? [])
    if (n.op_type === 'Constant') tensors.set(n.output![0], tensorToFloat32(n.attribute![0].t!));
  let act = Float64Array.from(x);
  let width = x.length / batch;
  for (let layer = 0; tensors.has(`layer${layer}.weight`); layer++) {
    const w = tensors.get(`layer${layer}.weight`)!;
    const b = tensors.get(`layer${layer}.bias`)!;
    const out = b.length;
    const last = !tensors.has(`layer${layer + 1}.weight`);
    const next = new Float64Array(batch * out);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < out; j++) {
        let sum = b[j];
        for (let i = 0; i < width; i++) sum += act[r * width + i] * w[i * out + j];
        next[r * out + j] = last ? sum : Math.max(0, sum);
      }
    }
    act = next;
    width = out;
  }
  if (softmax) {
    for (let r = 0; r < batch; r++) {
      const row = act.subarray(r * width, (r + 1) * width);
      const max = Math.max(...row);
      let total = 0;
      for (let j = 0; j < width; j++) total += row[j] = Math.exp(row[j] - max);
      for (let j = 0; j < width; j++) row[j] /= total;
    }
  }
  return act;
}

function randomInput(n: number, seed: number): Float32Array {
  const rand = seededUniform(seed);
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

async function assertMatchesReference(spec: MlpSpec, batch: number): Promise<void> {
  const bytes = generateMlpModel(spec);
  const x = randomInput(batch * spec.inputDim, 99);
  const result = await runModel(bytes, { input: float32Input(x, [batch, spec.inputDim]) });
  const y = result.output;
  assert.deepEqual(y.dims, [batch, spec.outputDim]);
  const expected = referenceForward(bytes, x, batch, spec.softmax ?? false);
  let maxDiff = 0;
  for (const [i, v] of (y.data as Float32Array).entries()) maxDiff = Math.max(maxDiff, Math.abs(v - expected[i]));
  assert.ok(maxDiff < 1e-4, `onnxruntime and the JS reference differ by ${maxDiff}`);
  // The outputs must not be trivially equal (e.g. all zero): the check above would then prove nothing.
  assert.ok(
    expected.some((v) => Math.abs(v) > 1e-3),
    'reference outputs are all ~0',
  );
}

test('a generated MLP runs in onnxruntime and matches a JS forward pass (weights in initializers)', async () => {
  await assertMatchesReference({ inputDim: 784, hiddenDims: [256, 128], outputDim: 10, seed: 3 }, 4);
});

test('a generated MLP with weights in Constant nodes computes the same as the JS reference', async () => {
  await assertMatchesReference(
    { inputDim: 32, hiddenDims: [64, 64, 16], outputDim: 5, seed: 5, weightsIn: 'constants' },
    3,
  );
});

test('softmax head and an old opset (9) load and match the reference', async () => {
  await assertMatchesReference({ inputDim: 20, hiddenDims: [30], outputDim: 7, seed: 11, softmax: true, opset: 9 }, 2);
});

test('the batch dimension is symbolic: any batch size runs', async () => {
  const spec = { inputDim: 8, hiddenDims: [8], outputDim: 2 };
  const bytes = generateMlpModel(spec);
  for (const batch of [1, 17]) {
    const r = await runModel(bytes, { input: float32Input(randomInput(batch * 8, batch), [batch, 8]) });
    assert.deepEqual(r.output.dims, [batch, 2]);
  }
});

test('generation is deterministic: same seed same bytes, another seed other weights', () => {
  const spec = { inputDim: 16, hiddenDims: [32], outputDim: 4, seed: 42 };
  assert.deepEqual(generateMlpModel(spec), generateMlpModel(spec));
  assert.notDeepEqual(generateMlpModel(spec), generateMlpModel({ ...spec, seed: 43 }));
  assert.equal(mlpWeights(spec)[0].weight.length, 16 * 32);
});

test('exampleModelSpec gives a ~10 MB model by default and scales with the requested size', () => {
  const spec = exampleModelSpec();
  assert.equal(spec.inputDim, 784);
  assert.equal(spec.outputDim, 10);
  const bytes = generateMlpModel(spec);
  const mb = bytes.length / 1024 / 1024;
  assert.ok(mb > 9 && mb < 11.5, `example model is ${mb.toFixed(2)} MiB`);
  assert.equal(analyzeModel(decodeModel(bytes)).parameterCount, mlpParameterCount(spec));
  const big = exampleModelSpec(14);
  assert.ok(mlpParameterCount(big) > mlpParameterCount(spec) * 1.25);
});

test('the brief’s 784-1536-1536-10 MLP has 3,581,962 parameters (~14 MB)', () => {
  const spec = { inputDim: 784, hiddenDims: [1536, 1536], outputDim: 10 };
  assert.equal(mlpParameterCount(spec), 3_581_962);
  const bytes = generateMlpModel(spec);
  assert.ok(Math.abs(bytes.length - 3_581_962 * 4) < 4096, `file is ${bytes.length} bytes`);
});
