/**
 * prune-magnitude: per-layer sparsity on target, the compressed size shrinks while the raw size does not, and
 * the pruned model runs in onnxruntime-node with its drift reported.
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
import { generateMlpModel, seededUniform } from '../../lib/onnx/generate';
import { decodeModel, encodeModel, type TensorProto } from '../../lib/onnx/model';
import { float32Tensor, TensorDataType, tensorToFloat32 } from '../../lib/onnx/tensor';
import type { TechniqueContext, TechniqueResult } from '../../lib/optimize/technique';
import { agreementOf, runBatches } from '../../lib/optimize/techniques/modelAgreement';
import { gzipSize, pruneMagnitude, pruneModel, pruneSmallest } from '../../lib/optimize/techniques/prune';

ort.env.logLevel = 'error';

let workDir: string;
before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ferry-prune-'));
});
after(async () => rm(workDir, { recursive: true, force: true }));

function context(model: Uint8Array, options?: Record<string, unknown>): TechniqueContext {
  return {
    analysis: analyzeModel(decodeModel(model)),
    target: { kind: 'cpu', sameMachine: true, threads: 1 },
    workDir,
    ...(options ? { options } : {}),
  };
}

function applied(result: TechniqueResult): Extract<TechniqueResult, { applied: true }> {
  assert.equal(result.applied, true, result.applied ? '' : `not applied: ${result.reason}`);
  return result as Extract<TechniqueResult, { applied: true }>;
}

/** Every float weight MatMul/Gemm/Conv read, by name, from initializers and Constant nodes. */
function weightsOf(bytes: Uint8Array): Map<string, Float32Array> {
  const g = decodeModel(bytes).graph!;
  const tensors = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) tensors.set(t.name!, t);
  for (const n of g.node ?? []) if (n.op_type === 'Constant') tensors.set(n.output![0], n.attribute![0].t!);
  const out = new Map<string, Float32Array>();
  for (const n of g.node ?? []) {
    if (!['MatMul', 'Gemm', 'Conv'].includes(n.op_type!)) continue;
    const t = tensors.get(n.input![1]);
    if (t && t.data_type === TensorDataType.FLOAT) out.set(n.input![1], tensorToFloat32(t));
  }
  return out;
}

function sparsity(values: Float32Array): number {
  return values.filter((v) => v === 0).length / values.length;
}

function randomFeeds(dims: number[], seed: number) {
  const rand = seededUniform(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return [
    {
      input: new ort.Tensor(
        'float32',
        Float32Array.from({ length: n }, () => rand() * 2 - 1),
        dims,
      ),
    },
  ];
}

const MODELS: Array<{ name: string; bytes: Uint8Array; dims: number[] }> = [
  {
    name: 'MLP 64-256-256-10',
    bytes: generateMlpModel({ inputDim: 64, hiddenDims: [256, 256], outputDim: 10 }),
    dims: [8, 64],
  },
  {
    name: 'MLP with weights in Constant nodes',
    bytes: generateMlpModel({ inputDim: 32, hiddenDims: [96], outputDim: 5, weightsIn: 'constants' }),
    dims: [8, 32],
  },
  {
    name: 'CNN (Conv+Relu+Conv+Relu+Gemm)',
    bytes: generateCnnModel({
      inputShape: [3, 16, 16],
      convs: [{ channels: 16 }, { channels: 32, stride: 2 }],
      classes: 10,
    }),
    dims: [2, 3, 16, 16],
  },
];

for (const { name, bytes, dims } of MODELS) {
  describe(name, () => {
    for (const target of [0.5, 0.9]) {
      test(`sparsity ${target}: every layer within 1% of the target, gzip smaller, raw size the same, runs in onnxruntime`, async () => {
        const r = applied(await pruneMagnitude.apply(bytes, context(bytes, { sparsity: target })));
        const before = weightsOf(bytes);
        const afterWeights = weightsOf(r.model);
        assert.equal(afterWeights.size, before.size);
        for (const [w, values] of afterWeights) {
          assert.equal(sparsity(before.get(w)!), 0, `${w} had no zeros before`);
          assert.ok(Math.abs(sparsity(values) - target) <= 0.01, `${w}: ${sparsity(values)} vs ${target}`);
          // The zeros are the smallest magnitudes: every surviving weight is at least as large as every pruned one.
          const original = before.get(w)!;
          let maxPruned = 0;
          let minKept = Infinity;
          values.forEach((v, i) => {
            if (v === 0) maxPruned = Math.max(maxPruned, Math.abs(original[i]));
            else {
              minKept = Math.min(minKept, Math.abs(v));
              assert.equal(v, original[i], `${w}[${i}] kept as is`);
            }
          });
          assert.ok(maxPruned <= minKept, `${w}: pruned up to ${maxPruned}, kept from ${minKept}`);
          assert.ok(
            r.notes.some((n) => n.startsWith(`${w} `) && n.includes(`${(100 * sparsity(values)).toFixed(1)}% zero`)),
            `${w} reported`,
          );
        }
        assert.ok(
          gzipSize(r.model) < gzipSize(bytes) * (1 - target * 0.6),
          `gzip ${gzipSize(bytes)} → ${gzipSize(r.model)}`,
        );
        assert.equal(r.model.length, bytes.length, 'dense storage: same raw size');
        assert.ok(
          r.notes.some((n) => n.includes('dense float32 storage does not shrink')),
          r.notes.join('\n'),
        );
        assert.ok(
          r.notes.some((n) => /gzip -9 size \d+ → \d+ bytes/.test(n)),
          r.notes.join('\n'),
        );
        const reported = r.notes.find((n) => n.startsWith('agreement'))!;
        const reportedMax = Number(/max abs error ([\d.e+-]+)/.exec(reported)?.[1]);
        assert.ok(reportedMax > 0, `max abs error reported: ${reported}`);
        // The model runs; its outputs moved (it is pruned) but stay finite.
        const feeds = randomFeeds(dims, 5);
        const a = agreementOf(await runBatches(bytes, feeds), await runBatches(r.model, feeds));
        assert.ok(a.maxAbsError > 0 && Number.isFinite(a.maxAbsError), `max abs error ${a.maxAbsError}`);
        if (target === 0.5) assert.ok(a.cosine > 0.6, `cosine ${a.cosine} at 50%`);
      });
    }
  });
}

describe('pruning rules', () => {
  test('pruneSmallest zeroes exactly round(s·n) entries, breaking ties by position, and counts existing zeros', () => {
    const v = Float32Array.from([3, -1, 1, 0.5, -0.5, 2, 1, 4]);
    assert.equal(pruneSmallest(v, 0.5), 4);
    assert.deepEqual(Array.from(v), [3, 0, 0, 0, 0, 2, 1, 4]);
    const zeros = Float32Array.from([0, 0, 0, 1]);
    assert.equal(pruneSmallest(zeros, 0.25), 3, 'already sparser than the target: left as is');
    assert.deepEqual(Array.from(zeros), [0, 0, 0, 1]);
  });

  test('a weight read by two MatMuls is pruned once and reported with both readers', () => {
    const rand = seededUniform(2);
    const model = {
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'shared',
        node: [
          makeNode('MatMul', ['input', 'w'], ['h'], { name: 'first' }),
          makeNode('MatMul', ['h', 'w'], ['output'], { name: 'second' }),
        ],
        initializer: [
          float32Tensor(
            'w',
            [16, 16],
            Float32Array.from({ length: 256 }, () => rand() - 0.5),
          ),
        ],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 16])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 16])],
      },
    };
    const report = pruneModel(model, { sparsity: 0.75 });
    assert.equal(report.weights.length, 1);
    assert.deepEqual(report.weights[0].nodes, ['first', 'second']);
    assert.equal(report.weights[0].zerosAfter, 192);
    assert.equal(sparsity(tensorToFloat32(model.graph.initializer[0])), 0.75);
  });

  test('a model without MatMul, Gemm or Conv is not applicable, and a bad sparsity is refused', async () => {
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'relu',
        node: [makeNode('Relu', ['input'], ['output'])],
        input: [tensorValueInfo('input', TensorDataType.FLOAT, [4])],
        output: [tensorValueInfo('output', TensorDataType.FLOAT, [4])],
      },
    });
    const r = await pruneMagnitude.apply(model, context(model));
    assert.equal(r.applied, false);
    assert.match((r as { reason: string }).reason, /no Conv, MatMul or Gemm/);
    const mlp = MODELS[0].bytes;
    const bad = await pruneMagnitude.apply(mlp, context(mlp, { sparsity: 1.5 }));
    assert.equal(bad.applied, false);
    assert.match((bad as { reason: string }).reason, /sparsity must be a number in \[0, 1\)/);
  });
});
