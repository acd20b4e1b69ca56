import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../lib/onnx/analyze';
import { attr, constantNode, irVersionForOpset, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { buildEncoderBlockModel, type EncoderBlockSpec } from '../../lib/onnx/encoderBlock';
import { buildMlpModel, generateMlpModel, seededUniform } from '../../lib/onnx/generate';
import { forEachNode } from '../../lib/onnx/graph';
import { decodeModel, encodeModel, type GraphProto, type OnnxModel } from '../../lib/onnx/model';
import { float32Tensor, TensorDataType, tensorToFloat32 } from '../../lib/onnx/tensor';
import type { TechniqueContext, TechniqueResult } from '../../lib/optimize/technique';
import {
  int8DynamicTechnique,
  quantizeDynamicInt8,
  quantizeWeightSymmetric,
} from '../../lib/optimize/techniques/int8Dynamic';
import { compareOutputs } from '../../lib/optimize/techniques/verifyCandidate';

ort.env.logLevel = 'error';

function context(model: Uint8Array, options?: Record<string, unknown>): TechniqueContext {
  return {
    analysis: analyzeModel(decodeModel(model)),
    target: { kind: 'cpu', sameMachine: true, threads: 1 },
    workDir: tmpdir(),
    ...(options ? { options } : {}),
  };
}

function randomTensor(dims: number[], seed: number): ort.Tensor {
  const rand = seededUniform(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return new ort.Tensor(
    'float32',
    Float32Array.from({ length: n }, () => rand() * 2 - 1),
    dims,
  );
}

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

function opTypes(model: Uint8Array): string[] {
  const ops: string[] = [];
  forEachNode(decodeModel(model).graph!, (n) => ops.push(n.domain ? `${n.domain}.${n.op_type}` : n.op_type!));
  return ops;
}

function applied(result: TechniqueResult): Extract<TechniqueResult, { applied: true }> {
  assert.equal(result.applied, true, result.applied ? '' : `not applied: ${result.reason}`);
  return result as Extract<TechniqueResult, { applied: true }>;
}

/** The original and the candidate on the same inputs: same output names and dims, and how close they are. */
async function agreement(original: Uint8Array, candidate: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const a = await run(original, feeds);
  const b = await run(candidate, feeds);
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
  for (const name of Object.keys(a)) assert.deepEqual(b[name].dims, a[name].dims, `dims of ${name}`);
  return compareOutputs(a, b);
}

function graphIo(model: Uint8Array) {
  const g = decodeModel(model).graph!;
  return { inputs: JSON.stringify(g.input), outputs: JSON.stringify(g.output) };
}

test('quantizeWeightSymmetric: one scale per column, the column max maps to ±127, transposed storage gives the same result', () => {
  // B = [[1, -4], [0.5, 2], [-1, 1]] (K=3, N=2)
  const b = Float32Array.from([1, -4, 0.5, 2, -1, 1]);
  const q = quantizeWeightSymmetric(b, 3, 2);
  assert.deepEqual(
    [...q.scales].map((s) => +s.toFixed(6)),
    [+(1 / 127).toFixed(6), +(4 / 127).toFixed(6)],
  );
  assert.deepEqual([...q.values], [127, -127, 64, 64, -127, 32]);
  const bt = Float32Array.from([1, 0.5, -1, -4, 2, 1]); // the same matrix stored [N, K]
  const qt = quantizeWeightSymmetric(bt, 3, 2, { transposed: true });
  assert.deepEqual([...qt.values], [...q.values]);
  const perTensor = quantizeWeightSymmetric(b, 3, 2, { perChannel: false });
  assert.equal(perTensor.scales.length, 1);
  assert.deepEqual([...perTensor.values], [32, -127, 16, 64, -32, 32]);
  const reduced = quantizeWeightSymmetric(b, 3, 2, { reduceRange: true });
  assert.equal(Math.max(...[...reduced.values].map(Math.abs)), 63);
  const zeros = quantizeWeightSymmetric(new Float32Array(4), 2, 2);
  assert.deepEqual([...zeros.values], [0, 0, 0, 0]);
  assert.ok(
    zeros.scales.every((s) => s > 0),
    'an all-zero column still gets a usable scale',
  );
});

for (const weightsIn of ['initializers', 'constants'] as const) {
  test(`MLP with weights in ${weightsIn}: every MatMul becomes DynamicQuantizeMatMul, bias folded, ≥3.5x smaller, cosine ≥ 0.999`, async () => {
    const original = generateMlpModel({ inputDim: 256, hiddenDims: [512, 512], outputDim: 64, weightsIn, seed: 3 });
    const before = Buffer.from(original);
    const result = applied(await int8DynamicTechnique.apply(original, context(original)));
    assert.ok(Buffer.from(original).equals(before), 'the input bytes are not modified');
    const ops = opTypes(result.model);
    assert.equal(ops.filter((o) => o === 'com.microsoft.DynamicQuantizeMatMul').length, 3, ops.join(' '));
    assert.ok(!ops.includes('MatMul') && !ops.includes('Add'), `MatMul and bias Add are replaced: ${ops.join(' ')}`);
    const model = decodeModel(result.model);
    assert.ok(model.opset_import!.some((o) => o.domain === 'com.microsoft' && Number(o.version) === 1));
    const floatWeights = model.graph!.initializer!.filter(
      (t) => t.data_type === TensorDataType.FLOAT && t.dims!.length === 2,
    );
    assert.equal(floatWeights.length, 0, 'no float32 weight matrix remains');
    assert.ok(!ops.includes('Constant') || weightsIn === 'constants', 'no Constant nodes appear');
    if (weightsIn === 'constants') {
      const floatConstants = model.graph!.node!.filter(
        (n) => n.op_type === 'Constant' && n.attribute![0].t!.dims!.length === 2,
      );
      assert.equal(floatConstants.length, 0, 'weight Constant nodes are replaced by int8 initializers');
    }
    assert.deepEqual(graphIo(result.model), graphIo(original), 'graph inputs and outputs are unchanged');
    const ratio = original.length / result.model.length;
    assert.ok(ratio >= 3.5, `size ratio ${ratio.toFixed(2)}`);
    const a = await agreement(original, result.model, { input: randomTensor([8, 256], 11) });
    assert.ok(a.cosine >= 0.999, `cosine ${a.cosine}`);
    assert.ok(a.maxAbsError > 0, 'the outputs did change: the quantized kernel really ran');
    assert.ok(
      result.notes.some((n) => /quantized 3 MatMul\/Gemm/.test(n)),
      result.notes.join('\n'),
    );
  });
}

/** input → MatMul(W) → Relu → MatMul(W, shared) → Gemm(transB=1, alpha, beta, C=[N]) → Relu → Gemm(transA=1 on a transposed view, C non-constant) */
function sharedAndGemmModel(): { model: Uint8Array; w: Float32Array } {
  const rand = seededUniform(5);
  const u = (n: number, limit: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * limit);
  const w = u(128 * 128, Math.sqrt(3 / 128));
  const graph: GraphProto = {
    name: 'shared_and_gemm',
    node: [
      constantNode('gemm1.weight', float32Tensor('gemm1.weight', [96, 128], u(96 * 128, Math.sqrt(3 / 128)))), // [N, K] for transB=1
      makeNode('MatMul', ['input', 'shared.weight'], ['h0'], { name: 'first_matmul' }),
      makeNode('Relu', ['h0'], ['h0r'], { name: 'relu0' }),
      makeNode('MatMul', ['h0r', 'shared.weight'], ['h1'], { name: 'second_matmul' }),
      makeNode('Gemm', ['h1', 'gemm1.weight', 'gemm1.bias'], ['h2'], {
        name: 'gemm_transb',
        attributes: [attr.int('transB', 1), attr.float('alpha', 0.5), attr.float('beta', 2)],
      }),
      makeNode('Relu', ['h2'], ['h2r'], { name: 'relu2' }),
      makeNode('Transpose', ['h2r'], ['h2t'], { name: 'transpose', attributes: [attr.ints('perm', [1, 0])] }),
      makeNode('Gemm', ['h2t', 'gemm2.weight', 'side'], ['output'], {
        name: 'gemm_transa',
        attributes: [attr.int('transA', 1), attr.float('beta', 0.25)],
      }),
    ],
    initializer: [
      float32Tensor('shared.weight', [128, 128], w),
      float32Tensor('gemm1.bias', [96], u(96, 0.1)),
      float32Tensor('gemm2.weight', [96, 32], u(96 * 32, Math.sqrt(3 / 96))),
    ],
    input: [
      tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 128]),
      tensorValueInfo('side', TensorDataType.FLOAT, ['batch', 32]),
    ],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 32])],
  };
  const model: OnnxModel = {
    ir_version: irVersionForOpset(13),
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'test',
    graph,
  };
  return { model: encodeModel(model), w };
}

test('a weight shared by two MatMuls is quantized once; Gemm transB/alpha/beta/C and transA keep their meaning', async () => {
  const { model: original, w } = sharedAndGemmModel();
  const { model, report } = quantizeDynamicInt8(original, { minElements: 256 });
  assert.ok(model);
  assert.equal(report.quantized.length, 4, JSON.stringify(report));
  assert.deepEqual(report.sharedWeights, [{ weight: 'shared.weight', nodes: ['first_matmul', 'second_matmul'] }]);
  const decoded = decodeModel(model);
  const int8 = decoded.graph!.initializer!.filter((t) => t.data_type === TensorDataType.INT8);
  assert.equal(int8.length, 3, `one int8 tensor per distinct weight: ${int8.map((t) => t.name)}`);
  const shared = int8.find((t) => t.name === 'shared.weight_quantized')!;
  assert.deepEqual(shared.dims, [128, 128]);
  // The stored int8 values are the per-column quantization of W.
  assert.deepEqual(Buffer.from(shared.raw_data!), Buffer.from(quantizeWeightSymmetric(w, 128, 128).values.buffer));
  const gemm1 = int8.find((t) => t.name === 'gemm1.weight_quantized')!;
  assert.deepEqual(gemm1.dims, [128, 96], 'transB=1 weight is stored transposed, as the kernel reads it');
  assert.ok(!decoded.graph!.node!.some((n) => n.op_type === 'Constant'), 'the Constant weight is gone once quantized');
  // gemm_transb: bias is beta·C folded into the kernel; gemm_transa: A transposed, beta·C added after.
  const ops = opTypes(model);
  assert.deepEqual(ops, [
    'com.microsoft.DynamicQuantizeMatMul',
    'Relu',
    'com.microsoft.DynamicQuantizeMatMul',
    'com.microsoft.DynamicQuantizeMatMul',
    'Relu',
    'Transpose',
    'Transpose',
    'Mul',
    'com.microsoft.DynamicQuantizeMatMul',
    'Add',
  ]);
  const gemm1Node = decoded.graph!.node!.find((n) => n.name === 'gemm_transb_quant')!;
  const bias = decoded.graph!.initializer!.find((t) => t.name === gemm1Node.input![4])!;
  const c = tensorToFloat32(decodeModel(original).graph!.initializer!.find((t) => t.name === 'gemm1.bias')!);
  assert.deepEqual(
    [...tensorToFloat32(bias)],
    [...c].map((v) => Math.fround(v * 2)),
    'bias = beta · C',
  );
  const a = await agreement(original, model, { input: randomTensor([4, 128], 21), side: randomTensor([4, 32], 22) });
  assert.ok(a.cosine >= 0.999, `cosine ${a.cosine}`);
  assert.ok(a.maxAbsError > 0);
});

test('Gemm with a C of shape [M, N] or a scalar, and opset 9 / IR 4 models, stay correct', async () => {
  const rand = seededUniform(9);
  const u = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
  for (const [cDims, opset] of [
    [[4, 64], 11],
    [[], 9],
    [[1, 64], 9],
  ] as const) {
    const graph: GraphProto = {
      name: 'gemm',
      node: [
        makeNode('Gemm', ['input', 'w', 'c'], ['output'], { name: 'gemm', attributes: [attr.float('beta', 0.5)] }),
      ],
      initializer: [
        float32Tensor('w', [128, 64], u(128 * 64)),
        float32Tensor('c', [...cDims], u(cDims.reduce((x: number, y: number) => x * y, 1))),
      ],
      input: [tensorValueInfo('input', TensorDataType.FLOAT, [4, 128])],
      output: [tensorValueInfo('output', TensorDataType.FLOAT, [4, 64])],
    };
    const original = encodeModel({
      ir_version: irVersionForOpset(opset),
      opset_import: [{ domain: '', version: opset }],
      graph,
    });
    const result = applied(await int8DynamicTechnique.apply(original, context(original)));
    const a = await agreement(original, result.model, { input: randomTensor([4, 128], 3) });
    assert.ok(a.cosine >= 0.999, `C dims [${cDims}], opset ${opset}: cosine ${a.cosine}`);
  }
});

test('IR 3 model (initializers listed as graph inputs) is quantized and loads', async () => {
  const original = generateMlpModel({ inputDim: 64, hiddenDims: [128], outputDim: 32, opset: 8 });
  const m = decodeModel(original);
  assert.equal(m.ir_version, 3);
  // IR 3 lists every initializer among the graph inputs.
  m.graph!.input!.push(...m.graph!.initializer!.map((t) => tensorValueInfo(t.name!, TensorDataType.FLOAT, t.dims!)));
  const ir3 = encodeModel(m);
  const result = applied(await int8DynamicTechnique.apply(ir3, context(ir3)));
  const inputs = decodeModel(result.model).graph!.input!.map((v) => v.name);
  assert.ok(!inputs.includes('layer0.weight'), `removed weights leave the input list: ${inputs}`);
  const a = await agreement(ir3, result.model, { input: randomTensor([2, 64], 8) });
  assert.ok(a.cosine >= 0.999, `cosine ${a.cosine}`);
});

function encoder(spec: Partial<EncoderBlockSpec>): Uint8Array {
  return encodeModel(buildEncoderBlockModel({ dModel: 128, heads: 4, ffnDim: 512, ...spec }));
}

for (const variant of [
  { layerNorm: 'op', opset: 17, weightsIn: 'initializers' },
  { layerNorm: 'decomposed', opset: 13, weightsIn: 'constants' },
] as const) {
  test(`transformer encoder block (LayerNorm ${variant.layerNorm}, opset ${variant.opset}, weights in ${variant.weightsIn}): projections and FFN quantized, attention MatMuls left alone`, async () => {
    const original = encoder({ ...variant, layers: 2 });
    const result = applied(await int8DynamicTechnique.apply(original, context(original)));
    const { report } = quantizeDynamicInt8(original);
    assert.equal(report.quantized.length, 12, 'Q, K, V, output, FFN up and down in each of 2 blocks');
    assert.equal(report.skipped.length, 4);
    for (const s of report.skipped) assert.match(s.reason, /B is not a constant: .* computed at run time/, s.node);
    assert.ok(
      result.notes.some((n) => n.includes('layer0_attention_scores_node') && n.includes('computed at run time')),
      result.notes.join('\n'),
    );
    const ops = opTypes(result.model);
    assert.equal(ops.filter((o) => o === 'MatMul').length, 4, 'the attention MatMuls are still float MatMuls');
    // Q, K and V read the same activation: it is quantized once per block and the three run as MatMulIntegerToFloat.
    assert.equal(ops.filter((o) => o === 'DynamicQuantizeLinear').length, 2, ops.join(' '));
    assert.equal(ops.filter((o) => o === 'com.microsoft.MatMulIntegerToFloat').length, 6);
    assert.equal(ops.filter((o) => o === 'com.microsoft.DynamicQuantizeMatMul').length, 6);
    const separate = quantizeDynamicInt8(original, { shareActivationQuantization: false });
    const separateOps = opTypes(separate.model!);
    assert.equal(separateOps.filter((o) => o === 'com.microsoft.DynamicQuantizeMatMul').length, 12);
    assert.ok(!separateOps.includes('DynamicQuantizeLinear'));
    const b = await agreement(original, separate.model!, { input: randomTensor([2, 16, 128], 31) });
    assert.ok(b.cosine >= 0.999, `cosine ${b.cosine} without shared activation quantization`);
    assert.deepEqual(graphIo(result.model), graphIo(original));
    const ratio = original.length / result.model.length;
    assert.ok(ratio >= 3.5, `size ratio ${ratio.toFixed(2)}`);
    const a = await agreement(original, result.model, { input: randomTensor([2, 16, 128], 31) });
    assert.ok(a.cosine >= 0.999, `cosine ${a.cosine}`);
    assert.ok(a.maxAbsError > 0);
  });
}

test('a MatMul inside an If branch reading an outer weight is quantized in place, the outer weight removed', async () => {
  const rand = seededUniform(13);
  const w = Float32Array.from({ length: 64 * 64 }, () => (rand() * 2 - 1) * 0.2);
  const branch = (name: string, op: string): GraphProto => ({
    name,
    node: [
      makeNode('MatMul', ['input', 'w'], [`${name}_mm`], { name: `${name}_matmul` }),
      makeNode(op, [`${name}_mm`], [`${name}_out`], { name: `${name}_act` }),
    ],
    output: [tensorValueInfo(`${name}_out`, TensorDataType.FLOAT, [null, 64])],
  });
  const graph: GraphProto = {
    name: 'branchy',
    node: [
      makeNode('If', ['flag'], ['output'], {
        name: 'if',
        attributes: [
          attr.graph('then_branch', branch('then', 'Relu')),
          attr.graph('else_branch', branch('else', 'Sigmoid')),
        ],
      }),
    ],
    initializer: [float32Tensor('w', [64, 64], w)],
    input: [
      tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 64]),
      tensorValueInfo('flag', TensorDataType.BOOL, []),
    ],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 64])],
  };
  const original = encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph });
  const { model, report } = quantizeDynamicInt8(original);
  assert.ok(model, JSON.stringify(report));
  assert.deepEqual(
    report.sharedWeights.map((s) => s.nodes),
    [['then_matmul', 'else_matmul']],
  );
  const g = decodeModel(model).graph!;
  assert.deepEqual(
    g.initializer!.map((t) => t.name).sort(),
    ['w_quantized', 'w_scale'],
    'one int8 copy and one scale, read by both branches',
  );
  for (const flag of [true, false]) {
    const a = await agreement(original, model, {
      input: randomTensor([3, 64], 2),
      flag: new ort.Tensor('bool', [flag], []),
    });
    assert.ok(a.cosine >= 0.999, `flag ${flag}: cosine ${a.cosine}`);
  }
});

test('not applicable: no MatMul/Gemm, only run-time B, or weights below minElements → a reason and no model', async () => {
  const noMatMul = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'relu',
      node: [makeNode('Relu', ['input'], ['output'])],
      input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 8])],
      output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 8])],
    },
  });
  const ctx = context(noMatMul);
  assert.deepEqual(int8DynamicTechnique.applicability(ctx.analysis, ctx.target), {
    ok: false,
    reason: 'the model has no MatMul or Gemm node to quantize',
  });
  const r1 = await int8DynamicTechnique.apply(noMatMul, ctx);
  assert.equal(r1.applied, false);
  assert.match((r1 as { reason: string }).reason, /no MatMul or Gemm/);

  const activationsOnly = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'outer',
      node: [makeNode('MatMul', ['a', 'b'], ['output'], { name: 'a_times_b' })],
      input: [tensorValueInfo('a', TensorDataType.FLOAT, [4, 8]), tensorValueInfo('b', TensorDataType.FLOAT, [8, 4])],
      output: [tensorValueInfo('output', TensorDataType.FLOAT, [4, 4])],
    },
  });
  const r2 = await int8DynamicTechnique.apply(activationsOnly, context(activationsOnly));
  assert.equal(r2.applied, false);
  assert.match((r2 as { reason: string }).reason, /a_times_b: B is not a constant: 'b' is a graph input/);

  const tiny = generateMlpModel({ inputDim: 8, hiddenDims: [8], outputDim: 4 });
  const before = Buffer.from(tiny);
  const r3 = await int8DynamicTechnique.apply(tiny, context(tiny));
  assert.equal(r3.applied, false);
  assert.match((r3 as { reason: string }).reason, /has 64 elements, below minElements \(1024\)/);
  assert.ok(Buffer.from(tiny).equals(before));
  // The same model with the minimum lowered is quantized.
  const r4 = applied(await int8DynamicTechnique.apply(tiny, context(tiny, { minElements: 16 })));
  assert.ok(opTypes(r4.model).includes('com.microsoft.DynamicQuantizeMatMul'));

  const r5 = await int8DynamicTechnique.apply(tiny, context(tiny, { minElements: 'many' }));
  assert.equal(r5.applied, false);
  assert.match((r5 as { reason: string }).reason, /minElements must be a non-negative number/);
});

test('small weights stay float32 and are reported while large ones are quantized', async () => {
  const m = buildMlpModel({ inputDim: 256, hiddenDims: [256], outputDim: 4 });
  const original = encodeModel(m);
  const result = applied(await int8DynamicTechnique.apply(original, context(original)));
  assert.ok(
    !result.notes.some((n) => n.startsWith('left in float32')),
    'at the default minimum (1024) both weights are quantized',
  );
  const ops = opTypes(result.model);
  assert.deepEqual(
    ops.filter((o) => o.endsWith('MatMul')),
    ['com.microsoft.DynamicQuantizeMatMul', 'com.microsoft.DynamicQuantizeMatMul'],
  );
  const strict = applied(await int8DynamicTechnique.apply(original, context(original, { minElements: 2000 })));
  assert.ok(
    strict.notes.some((n) =>
      /left in float32: layer1_matmul \(MatMul\): weight 'layer1.weight' has 1024 elements, below minElements \(2000\)/.test(
        n,
      ),
    ),
    strict.notes.join('\n'),
  );
  assert.deepEqual(
    opTypes(strict.model).filter((o) => o.endsWith('MatMul')),
    ['com.microsoft.DynamicQuantizeMatMul', 'MatMul'],
  );
});

test('GPU targets are told why int8-dynamic does not fit them', () => {
  const original = generateMlpModel({ inputDim: 64, hiddenDims: [64], outputDim: 8 });
  const analysis = analyzeModel(decodeModel(original));
  const verdict = int8DynamicTechnique.applicability(analysis, { kind: 'gpu', sameMachine: false, threads: 1 });
  assert.equal(verdict.ok, false);
  assert.match(
    int8DynamicTechnique.expectedEffect(analysis, { kind: 'cpu', sameMachine: true, threads: 1 }),
    /4x smaller/,
  );
});
