/**
 * The optimization engine on generated MLPs, with the registered techniques and with small real
 * techniques defined here (a lossy one, one whose output onnxruntime cannot load, one that declines,
 * one that throws), so that every path of the table is exercised: measured, rejected by the budget,
 * failed (never offered), not applicable. Everything runs in onnxruntime; nothing is stubbed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { modelIndexJson } from '../../lib/image/modelImage';
import { buildMlpModel, generateMlpModel } from '../../lib/onnx/generate';
import { decodeModel, encodeModel } from '../../lib/onnx/model';
import { float32Tensor, tensorToFloat32 } from '../../lib/onnx/tensor';
import { compareOutputs } from '../../lib/optimize/agreement';
import { budgetRejection, parseBudget, resolveBudget } from '../../lib/optimize/budget';
import { candidatePlan, type EngineProgress, runOptimizationEngine } from '../../lib/optimize/engine';
import type { OutputsWire } from '../../lib/optimize/measureProtocol';
import { plansFromTable } from '../../lib/optimize/plans';
import { feedsToWire, generateFeeds, isBatchDynamic } from '../../lib/optimize/sampleInputs';
import { coresUsed, costPerMillionUsd, pickBest } from '../../lib/optimize/score';
import { formatTradeoffTable } from '../../lib/optimize/table';
import type { OptimizationTechnique } from '../../lib/optimize/technique';
import { techniques as registered } from '../../lib/optimize/techniques';
import { graphOptimize } from '../../lib/optimize/techniques/graphOptimize';
import { sessionTuning } from '../../lib/optimize/techniques/sessionTuning';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-engine-test-'));
});
after(async () => rm(dir, { recursive: true, force: true }));

const quick = { measureMs: 120, agreementSamples: 64 };

/** Real transforms for the engine's other paths. */
const perturbWeights: OptimizationTechnique = {
  id: 'perturb-weights',
  title: 'Perturb weights (test: a lossy transform)',
  description: 'adds ±40% deterministic noise to every float initializer',
  expectedEffect: () => 'worse outputs',
  applicability: () => ({ ok: true }),
  async apply(bytes) {
    const model = decodeModel(bytes);
    let k = 0;
    model.graph!.initializer = model.graph!.initializer!.map((t) => {
      const v = tensorToFloat32(t);
      const noisy = v.map((x) => x * (1 + 0.4 * Math.sin(++k * 12.9898)));
      return float32Tensor(t.name!, t.dims!.map(Number), noisy);
    });
    return { applied: true, model: encodeModel(model), notes: ['perturbed'] };
  },
};
const brokenOp: OptimizationTechnique = {
  id: 'broken-op',
  title: 'Unknown operator (test: a model onnxruntime cannot load)',
  description: 'renames a node to an operator no runtime has',
  expectedEffect: () => 'none',
  applicability: () => ({ ok: true }),
  async apply(bytes) {
    const model = decodeModel(bytes);
    model.graph!.node![0]!.op_type = 'NoSuchOperatorAnywhere';
    return { applied: true, model: encodeModel(model), notes: [] };
  },
};
const declines: OptimizationTechnique = {
  id: 'declines',
  title: 'Declines (test)',
  description: 'says why it does not apply',
  expectedEffect: () => 'none',
  applicability: () => ({ ok: true }),
  async apply() {
    return { applied: false, reason: 'needs a GPU target' };
  },
};
const notForCpu: OptimizationTechnique = {
  ...declines,
  id: 'gpu-only',
  applicability: () => ({ ok: false, reason: 'GPU kernels only' }),
};
const throws: OptimizationTechnique = {
  ...declines,
  id: 'throws',
  async apply() {
    throw new Error('transform bug');
  },
};

describe('engine on a generated MLP', () => {
  const model = generateMlpModel({ inputDim: 64, hiddenDims: [256, 128], outputDim: 8, seed: 7 });
  let result: Awaited<ReturnType<typeof runOptimizationEngine>>;
  const progress: EngineProgress[] = [];

  before(async () => {
    result = await runOptimizationEngine({
      model,
      workDir: path.join(dir, 'mlp'),
      registry: [graphOptimize, sessionTuning, perturbWeights, brokenOp, declines, notForCpu, throws],
      target: { threads: 2 },
      measure: quick,
      techniqueOptions: { 'session-tuning': { timeBudgetMs: 1500 } },
      onProgress: (p) => progress.push(p),
    });
  });

  test('the original is the baseline: exact agreement, ratios of 1', () => {
    const orig = result.table.candidates.find((c) => c.id === 'original')!;
    assert.equal(orig.state, 'measured');
    assert.equal(orig.withinBudget, true);
    assert.deepEqual(orig.row!.agreement, { maxAbsError: 0, cosine: 1, top1: 1, samples: 64 });
    assert.deepEqual(orig.row!.vsOriginal, {
      sizeRatio: 1,
      gzipRatio: 1,
      speedupP50: 1,
      speedupLargeBatch: 1,
      memoryRatio: 1,
    });
  });

  test('every row is measured on batch 1 and a larger batch, with sizes, load time, memory and a cost', () => {
    for (const c of result.table.candidates.filter((x) => x.state === 'measured')) {
      const r = c.row!;
      assert.ok(r.sizeBytes > 0 && r.gzipBytes > 0 && r.gzipBytes < r.sizeBytes * 1.01, `${c.id} sizes`);
      assert.ok(r.loadMs > 0, `${c.id} load`);
      assert.ok(r.batch1.iterations >= 20 && r.batch1.p50Ms > 0 && r.batch1.p95Ms >= r.batch1.p50Ms, `${c.id} batch 1`);
      assert.equal(r.largeBatch?.batchSize, 16, `${c.id}: the MLP's batch dim is dynamic`);
      assert.ok(r.largeBatch!.throughputPerSec > 0);
      assert.ok(
        r.peakRssBytes > r.modelRssBytes && r.modelRssBytes > 0,
        `${c.id} memory ${r.peakRssBytes} ${r.modelRssBytes}`,
      );
      assert.ok(Math.abs(r.costPerMillionUsd - costPerMillionUsd(r.batch1.p50Ms, r.cores, r.peakRssBytes)) < 1e-12);
    }
  });

  test('graph-optimize fuses the MLP and keeps its outputs', () => {
    const go = result.table.candidates.find((c) => c.id === 'graph-optimize')!;
    assert.equal(go.state, 'measured');
    assert.equal(go.withinBudget, true);
    assert.ok(go.row!.agreement.cosine > 0.99999, `cosine ${go.row!.agreement.cosine}`);
    assert.equal(go.row!.agreement.top1, 1);
    assert.ok(
      go.notes.some((n) => /FusedGemm|Gemm/.test(n)),
      go.notes.join(' | '),
    );
  });

  test('a lossy candidate is rejected by the budget with the reason; it stays in the table', () => {
    const lossy = result.table.candidates.find((c) => c.id === 'perturb-weights')!;
    assert.equal(lossy.state, 'measured');
    assert.equal(lossy.withinBudget, false);
    assert.match(lossy.rejection!, /^outside the accuracy budget: .*(cosine|top-1)/);
    const plan = plansFromTable(result.table).find((p) => p.id === 'perturb-weights')!;
    assert.equal(plan.withinBudget, false);
    assert.equal(plan.rejection, lossy.rejection);
  });

  test('a candidate onnxruntime cannot load is failed, never offered, and its file is not kept', () => {
    const broken = result.table.candidates.find((c) => c.id === 'broken-op')!;
    assert.equal(broken.state, 'failed');
    assert.match(broken.reason!, /onnxruntime cannot load it/);
    assert.equal(broken.row, undefined);
    assert.ok(!plansFromTable(result.table).some((p) => p.id === 'broken-op'));
    assert.ok(!existsSync(path.join(dir, 'mlp', 'broken-op.onnx')));
    // ... nor is a combination with it: graph-optimize cannot load it either.
    const combo = result.table.candidates.find((c) => c.id === 'broken-op.graph-optimize');
    assert.ok(combo?.state !== 'measured');
  });

  test('techniques that decline, do not apply, or throw say why', () => {
    const by = (id: string) => result.table.candidates.find((c) => c.id === id)!;
    assert.deepEqual([by('declines').state, by('declines').reason], ['not-applicable', 'needs a GPU target']);
    assert.deepEqual([by('gpu-only').state, by('gpu-only').reason], ['not-applicable', 'GPU kernels only']);
    assert.deepEqual([by('throws').state, by('throws').reason], ['failed', 'throws failed: transform bug']);
    const lines = formatTradeoffTable(result.table).join('\n');
    assert.match(lines, /declines\s+not applicable: needs a GPU target/);
  });

  test('session tuning tunes the best model and its options travel with the candidate into the image index', () => {
    const tuned = result.table.candidates.find((c) => c.techniques.includes('session-tuning'));
    if (!tuned) {
      // The defaults were the best of the grid: the tuning step says so instead of adding a copy.
      return;
    }
    assert.equal(tuned.techniques[tuned.techniques.length - 1], 'session-tuning');
    if (tuned.state === 'not-applicable') {
      assert.match(tuned.reason!, /defaults were already the best/);
      return;
    }
    const o = tuned.sessionOptions!;
    assert.ok(o.intraOpNumThreads && o.executionMode && o.graphOptimizationLevel, JSON.stringify(o));
    assert.equal(tuned.row!.cores, coresUsed(o, result.table.target));
    const index = JSON.parse(
      modelIndexJson([{ name: 'm', version: '1', onnxPath: 'x', sessionOptions: o as Record<string, unknown> }]),
    );
    assert.deepEqual(index.models[0].sessionOptions, JSON.parse(JSON.stringify(o)));
  });

  test('the best candidate is within the budget and has the lowest score of them', () => {
    const best = result.table.candidates.find((c) => c.id === result.table.best)!;
    assert.ok(best.withinBudget && best.row);
    const within = result.table.candidates.filter((c) => c.withinBudget && c.row);
    const min = Math.min(...within.map((c) => c.row!.costPerMillionUsd));
    assert.ok(best.row.costPerMillionUsd <= min * 1.02 + 1e-15);
  });

  test('every offered candidate file loads and runs in onnxruntime with its session options', async () => {
    const feeds = {
      input: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)),
        [1, 64],
      ),
    };
    const reference = (await (await ort.InferenceSession.create(model)).run(feeds)).output!.data as Float32Array;
    for (const c of result.candidates.filter((x) => x.state === 'measured' && x.withinBudget)) {
      const session = await ort.InferenceSession.create(c.modelPath!, c.sessionOptions);
      const out = (await session.run(feeds)).output!.data as Float32Array;
      await session.release();
      const maxDiff = Math.max(...Array.from(out, (v, i) => Math.abs(v - reference[i]!)));
      assert.ok(maxDiff < 1e-3, `${c.id}: ${maxDiff}`);
    }
  });

  test('the table is plain data and progress reaches 1', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(result.table)), result.table);
    assert.equal(progress.at(-1)?.phase, 'done');
    assert.equal(progress.at(-1)?.fraction, 1);
    assert.ok(progress.some((p) => p.phase === 'measure' && p.candidate === 'graph-optimize'));
  });

  test('recommendations rank the applicable techniques first, each with reasons and an expected effect', () => {
    const recs = result.table.recommendations;
    assert.deepEqual(
      recs.map((r) => r.rank),
      recs.map((_, i) => i + 1),
    );
    const firstNot = recs.findIndex((r) => !r.applicable);
    assert.ok(firstNot === -1 || recs.slice(firstNot).every((r) => !r.applicable));
    assert.match(recs.find((r) => r.technique === 'gpu-only')!.reasons[0]!, /not applicable: GPU kernels only/);
    for (const r of recs.filter((x) => x.applicable)) assert.ok(r.expectedEffect.length > 0, r.technique);
  });
});

test('a looser budget accepts what the default rejects; a stricter one rejects even fusion drift', async () => {
  const model = generateMlpModel({ inputDim: 32, hiddenDims: [64], outputDim: 6, seed: 3 });
  const loose = await runOptimizationEngine({
    model,
    workDir: path.join(dir, 'loose'),
    registry: [perturbWeights],
    budget: { minCosine: 0, minTop1: 0 },
    measure: quick,
  });
  assert.equal(loose.table.candidates.find((c) => c.id === 'perturb-weights')!.withinBudget, true);
  const strict = await runOptimizationEngine({
    model,
    workDir: path.join(dir, 'strict'),
    registry: [perturbWeights],
    budget: { maxAbsError: 1e-9 },
    measure: quick,
  });
  assert.match(strict.table.candidates.find((c) => c.id === 'perturb-weights')!.rejection!, /max abs error .* > 1e-9/);
});

test('calibration samples are the agreement inputs; unknown techniques are refused with the registered list', async () => {
  const model = generateMlpModel({ inputDim: 8, hiddenDims: [16], outputDim: 3, seed: 2 });
  const calibration = Array.from({ length: 5 }, (_, i) => ({
    input: { dims: [1, 8], data: Float32Array.from({ length: 8 }, (_, j) => Math.cos(i + j)) },
  }));
  const r = await runOptimizationEngine({
    model,
    workDir: path.join(dir, 'calib'),
    registry: [graphOptimize],
    calibration,
    measure: quick,
  });
  assert.equal(r.table.candidates[0]!.row!.agreement.samples, 5);
  assert.match(r.table.method, /5 row\(s\) of the calibration data/);
  await assert.rejects(
    runOptimizationEngine({ model, workDir: path.join(dir, 'unknown'), techniques: ['int3-magic'], measure: quick }),
    new RegExp(`unknown technique "int3-magic"; registered: ${registered.map((t) => t.id).join(', ')}`),
  );
});

test('combinations: a weight transform then graph-optimize, pruning then int8; session-tuning is tuned last', () => {
  assert.deepEqual(candidatePlan(['graph-optimize', 'session-tuning', 'int8-dynamic', 'prune-magnitude'], true), [
    ['graph-optimize'],
    ['int8-dynamic'],
    ['prune-magnitude'],
    ['int8-dynamic', 'graph-optimize'],
    ['prune-magnitude', 'graph-optimize'],
    ['prune-magnitude', 'int8-dynamic'],
  ]);
  assert.deepEqual(candidatePlan(['int8-dynamic'], true), [['int8-dynamic']]);
  assert.deepEqual(candidatePlan(['int8-dynamic', 'graph-optimize'], false), [['int8-dynamic'], ['graph-optimize']]);
});

test('agreement: cosine, max abs error and top-1 over class-score outputs; shape changes are a problem', () => {
  const wire = (rows: number[][]): OutputsWire => ({
    runs: [
      feedsToWire({
        out: { type: 'float32', dims: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) },
      }),
    ],
    skipped: [],
  });
  const a = wire([
    [1, 0, 0],
    [0, 2, 0],
    [0, 0, 3],
    [1, 1, 0.5],
  ]);
  const same = compareOutputs(a, a, 4);
  assert.deepEqual(same.figures, { maxAbsError: 0, cosine: 1, top1: 1, samples: 4 });
  const flipped = compareOutputs(
    a,
    wire([
      [1, 0, 0],
      [0, 2, 0],
      [0, 0, 3],
      [0.9, 1.1, 0.5],
    ]),
    4,
  );
  assert.equal(flipped.figures.top1, 0.75);
  assert.ok(Math.abs(flipped.figures.maxAbsError - 0.1) < 1e-6);
  assert.ok(flipped.figures.cosine > 0.99 && flipped.figures.cosine < 1);
  assert.equal(compareOutputs(a, a, 4, false).figures.top1, null);
  assert.match(
    compareOutputs(
      a,
      wire([
        [1, 0],
        [0, 2],
      ]),
      4,
    ).problem!,
    /shape \[2, 2\].*\[4, 3\]/,
  );
  assert.match(
    compareOutputs(
      a,
      wire([
        [NaN, 0, 0],
        [0, 2, 0],
        [0, 0, 3],
        [1, 1, 0.5],
      ]),
      4,
    ).problem!,
    /NaN/,
  );
});

test('budget: parsing, defaults and the reason it gives', () => {
  assert.deepEqual(resolveBudget(), { minCosine: 0.99, minTop1: 0.99 });
  assert.deepEqual(parseBudget('cosine=0.999, top1=0.98,maxabs=0.01'), {
    minCosine: 0.999,
    minTop1: 0.98,
    maxAbsError: 0.01,
  });
  assert.throws(() => parseBudget('cosine'), /expected key=number/);
  assert.throws(() => parseBudget('speed=2'), /known keys are cosine, top1, maxabs/);
  assert.throws(() => resolveBudget({ minCosine: 1.5 }), /at most 1/);
  assert.equal(
    budgetRejection({ maxAbsError: 0.1, cosine: 0.995, top1: null, samples: 1 }, resolveBudget()),
    undefined,
  );
  assert.equal(
    budgetRejection({ maxAbsError: 0.1, cosine: 0.98, top1: 0.9, samples: 1 }, resolveBudget()),
    'outside the accuracy budget: cosine 0.9800 < 0.99, top-1 agreement 0.9000 < 0.99',
  );
});

test('score: lowest cost wins; within 2% the lower latency, then the smaller size', () => {
  assert.equal(
    pickBest([
      { id: 'a', cost: 1, p50Ms: 2, gzipBytes: 5 },
      { id: 'b', cost: 0.5, p50Ms: 4, gzipBytes: 5 },
    ])!.id,
    'b',
  );
  assert.equal(
    pickBest([
      { id: 'a', cost: 1, p50Ms: 2, gzipBytes: 5 },
      { id: 'b', cost: 0.99, p50Ms: 4, gzipBytes: 5 },
    ])!.id,
    'a',
  );
  assert.equal(
    pickBest([
      { id: 'a', cost: 1, p50Ms: 2, gzipBytes: 5 },
      { id: 'b', cost: 1, p50Ms: 2, gzipBytes: 4 },
    ])!.id,
    'b',
  );
  // Two cores must nearly halve the latency to pay for themselves.
  assert.ok(costPerMillionUsd(1, 2, 0) > costPerMillionUsd(1.9, 1, 0));
});

test('sample inputs: batch dim propagated by name, masks all ones, token types zero, fixed values repeated per row', () => {
  const specs = [
    { name: 'input_ids', dataType: 'INT64', shape: ['batch', 'sequence'] },
    { name: 'attention_mask', dataType: 'INT64', shape: ['batch', 'sequence'] },
    { name: 'token_type_ids', dataType: 'INT64', shape: ['batch', 'sequence'] },
    { name: 'state', dataType: 'FP32', shape: [2, 'batch', 4] },
    { name: 'sr', dataType: 'INT64', shape: [] },
  ];
  assert.equal(isBatchDynamic(specs), true);
  const f = generateFeeds(specs, {
    batch: 3,
    seed: 1,
    dims: { sequence: 5 },
    fixed: { sr: { type: 'int64', dims: [], data: [16000] } },
  });
  assert.deepEqual(f.input_ids!.dims, [3, 5]);
  assert.deepEqual(f.state!.dims, [2, 3, 4]);
  assert.ok(Array.from(f.attention_mask!.data as BigInt64Array).every((v) => v === 1n));
  assert.ok(Array.from(f.token_type_ids!.data as BigInt64Array).every((v) => v === 0n));
  assert.ok(Array.from(f.input_ids!.data as BigInt64Array).every((v) => v === 0n || v === 1n));
  assert.deepEqual(Array.from(f.sr!.data as BigInt64Array), [16000n]);
  assert.equal(isBatchDynamic([{ name: 'x', dataType: 'FP32', shape: [1, 16, 96] }]), false);
  // Same seed, same data: every candidate sees the same inputs.
  assert.deepEqual(generateFeeds(specs, { batch: 2, seed: 9 }), generateFeeds(specs, { batch: 2, seed: 9 }));
});

test('graph-optimize refuses the hardware-specific level for an image that may run elsewhere', async () => {
  const model = encodeModel(buildMlpModel({ inputDim: 8, hiddenDims: [8], outputDim: 2, seed: 1 }));
  const { analyzeModel } = await import('../../lib/onnx/analyze');
  const analysis = analyzeModel(decodeModel(model));
  const portable = await graphOptimize.apply(model, {
    analysis,
    target: { kind: 'cpu', sameMachine: false, threads: 1 },
    workDir: dir,
    options: { level: 'all' },
  });
  assert.equal(portable.applied, false);
  assert.match((portable as { reason: string }).reason, /'all' is hardware-specific/);
  const local = await graphOptimize.apply(model, {
    analysis,
    target: { kind: 'cpu', sameMachine: true, threads: 1 },
    workDir: dir,
  });
  assert.equal(local.applied, true);
  assert.match((local as { notes: string[] }).notes[0]!, /^level all: /);
});
