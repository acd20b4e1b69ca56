import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../lib/onnx/analyze';
import { attr, constantNode, irVersionForOpset, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { buildEncoderBlockModel, type EncoderBlockSpec } from '../../lib/onnx/encoderBlock';
import { float16BitsToFloat32, float16Tensor, float32ToFloat16Bits } from '../../lib/onnx/float16';
import { generateMlpModel, seededUniform } from '../../lib/onnx/generate';
import { forEachNode } from '../../lib/onnx/graph';
import { decodeModel, encodeModel, type GraphProto, type NodeProto } from '../../lib/onnx/model';
import { float32Tensor, int64Tensor, TensorDataType, tensorToFloat32 } from '../../lib/onnx/tensor';
import type { TechniqueContext, TechniqueResult } from '../../lib/optimize/technique';
import {
  convertToFloat16Compute,
  fp16WeightsTechnique,
  storeWeightsAsFloat16,
} from '../../lib/optimize/techniques/fp16';
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
  return new ort.Tensor(
    'float32',
    Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
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

async function agreement(original: Uint8Array, candidate: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const a = await run(original, feeds);
  const b = await run(candidate, feeds);
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
  for (const name of Object.keys(a)) {
    assert.deepEqual(b[name].dims, a[name].dims, `dims of ${name}`);
    assert.equal(b[name].type, 'float32', `${name} stays float32`);
  }
  return compareOutputs(a, b);
}

function applied(result: TechniqueResult): Extract<TechniqueResult, { applied: true }> {
  assert.equal(result.applied, true, result.applied ? '' : `not applied: ${result.reason}`);
  return result as Extract<TechniqueResult, { applied: true }>;
}

function graphIo(model: Uint8Array) {
  const g = decodeModel(model).graph!;
  return JSON.stringify({ inputs: g.input, outputs: g.output });
}

function weightTensors(model: Uint8Array) {
  const g = decodeModel(model).graph!;
  const out = [...g.initializer!];
  for (const n of g.node!) if (n.op_type === 'Constant') out.push({ ...n.attribute![0].t!, name: n.output![0] });
  return out;
}

test('float32 → float16 rounds to nearest even, saturates to Infinity past 65504, keeps subnormals', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [-1e6, 0xfc00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [3 * 2 ** -25, 0x0002],
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [0, 0],
    [-0, 0x8000],
    [Infinity, 0x7c00],
  ];
  for (const [value, bits] of cases)
    assert.equal(float32ToFloat16Bits(value), bits, `${value} → 0x${float32ToFloat16Bits(value).toString(16)}`);
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
  const values = Float32Array.from([0.5, -3.25, 1000.125, 1e-6]);
  const back = tensorToFloat32(float16Tensor('t', [4], values));
  assert.deepEqual([...back].slice(0, 3), [0.5, -3.25, 1000]);
  assert.ok(Math.abs(back[3] - 1e-6) < 6e-8);
});

/** An MLP with weights both in initializers and Constant nodes, and one weight read by two MatMuls. */
function mixedMlp(): Uint8Array {
  const rand = seededUniform(4);
  const u = (n: number, limit: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * limit);
  const graph: GraphProto = {
    name: 'mixed',
    node: [
      constantNode('w1', float32Tensor('w1', [128, 128], u(128 * 128, 0.15))),
      makeNode('MatMul', ['input', 'w0'], ['h0'], { name: 'mm0' }),
      makeNode('Add', ['h0', 'b0'], ['h0b'], { name: 'add0' }),
      makeNode('Relu', ['h0b'], ['h0r'], { name: 'relu0' }),
      makeNode('MatMul', ['h0r', 'w1'], ['h1'], { name: 'mm1' }),
      makeNode('Relu', ['h1'], ['h1r'], { name: 'relu1' }),
      makeNode('MatMul', ['h1r', 'w1'], ['h2'], { name: 'mm2_shared' }),
      makeNode('Mul', ['h2', 'scale'], ['output'], { name: 'scale' }),
    ],
    initializer: [
      float32Tensor('w0', [64, 128], u(64 * 128, 0.2)),
      float32Tensor('b0', [128], u(128, 0.1)),
      float32Tensor('scale', [], [0.5]),
    ],
    input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 64])],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 128])],
  };
  return encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test', graph });
}

test('weights in initializers and Constants become float16 with Casts; ≥1.95x smaller; I/O float32; error reported', async () => {
  const original = mixedMlp();
  const before = Buffer.from(original);
  const result = applied(await fp16WeightsTechnique.apply(original, context(original)));
  assert.ok(Buffer.from(original).equals(before), 'input bytes untouched');
  const ratio = original.length / result.model.length;
  assert.ok(ratio >= 1.95, `size ratio ${ratio.toFixed(3)}`);
  assert.equal(graphIo(result.model), graphIo(original), 'graph inputs and outputs unchanged (float32)');
  const tensors = weightTensors(result.model);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const w of ['w0_fp16', 'w1_fp16', 'b0_fp16']) assert.equal(byName.get(w)?.data_type, TensorDataType.FLOAT16, w);
  assert.equal(byName.get('scale')?.data_type, TensorDataType.FLOAT, 'a scalar stays float32 (below minElements)');
  const g = decodeModel(result.model).graph!;
  const casts = g.node!.filter((n) => n.op_type === 'Cast');
  assert.deepEqual(casts.map((c) => `${c.input![0]}→${c.output![0]}`).sort(), [
    'b0_fp16→b0',
    'w0_fp16→w0',
    'w1_fp16→w1',
  ]);
  assert.ok(casts.every((c) => Number(c.attribute![0].i) === TensorDataType.FLOAT));
  assert.equal(
    g.node!.filter((n) => n.input!.includes('w1')).length,
    2,
    'the shared weight is converted once; both MatMuls read its one Cast',
  );
  const weightNote = result.notes.find((n) => n.startsWith('max abs weight rounding error'));
  assert.ok(weightNote, result.notes.join('\n'));
  const reported = Number(weightNote!.split(' ').pop());
  assert.ok(reported > 0 && reported < 1e-3, `reported ${reported}`);
  const a = await agreement(original, result.model, { input: randomTensor([4, 64], 1) });
  assert.ok(a.cosine >= 0.9999, `cosine ${a.cosine}`);
  assert.ok(a.maxAbsError > 0 && a.maxAbsError < 1e-2, `max abs error ${a.maxAbsError}`);
  assert.ok(result.notes.some((n) => n.includes('max abs output error')));
});

function encoder(spec: Partial<EncoderBlockSpec>): Uint8Array {
  return encodeModel(buildEncoderBlockModel({ dModel: 128, heads: 4, ffnDim: 512, ...spec }));
}

for (const variant of [
  { layerNorm: 'op', opset: 17, weightsIn: 'initializers' },
  { layerNorm: 'decomposed', opset: 13, weightsIn: 'constants' },
] as const) {
  test(`transformer encoder (LayerNorm ${variant.layerNorm}, weights in ${variant.weightsIn}): weights-only fp16 halves the file and agrees`, async () => {
    const original = encoder(variant);
    const result = applied(await fp16WeightsTechnique.apply(original, context(original)));
    assert.ok(
      original.length / result.model.length >= 1.95,
      `ratio ${(original.length / result.model.length).toFixed(3)}`,
    );
    assert.equal(graphIo(result.model), graphIo(original));
    const a = await agreement(original, result.model, { input: randomTensor([2, 16, 128], 5) });
    assert.ok(a.cosine >= 0.9999, `cosine ${a.cosine}`);
  });
}

test('weights beyond the float16 range stay float32 and are reported; IR 3 input lists follow the rename', async () => {
  const big = Float32Array.from({ length: 64 * 32 }, (_, i) => (i === 5 ? 1e5 : (i % 7) / 7 - 0.5));
  const graph: GraphProto = {
    name: 'range',
    node: [
      makeNode('MatMul', ['input', 'wide'], ['h'], { name: 'mm_wide' }),
      makeNode('MatMul', ['h', 'narrow'], ['output'], { name: 'mm_narrow' }),
    ],
    initializer: [
      float32Tensor('wide', [64, 32], big),
      float32Tensor(
        'narrow',
        [32, 16],
        Float32Array.from({ length: 512 }, (_, i) => Math.sin(i)),
      ),
    ],
    input: [
      tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 64]),
      tensorValueInfo('wide', TensorDataType.FLOAT, [64, 32]),
      tensorValueInfo('narrow', TensorDataType.FLOAT, [32, 16]),
    ],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 16])],
  };
  const original = encodeModel({ ir_version: 3, opset_import: [{ domain: '', version: 8 }], graph });
  const result = applied(await fp16WeightsTechnique.apply(original, context(original)));
  assert.ok(
    result.notes.some((n) => /kept in float32: wide: values up to 100000 do not fit float16/.test(n)),
    result.notes.join('\n'),
  );
  const g = decodeModel(result.model).graph!;
  assert.deepEqual(
    g.input!.map((v) => `${v.name}:${v.type!.tensor_type!.elem_type}`),
    ['input:1', 'wide:1', 'narrow_fp16:10'],
  );
  const a = await agreement(original, result.model, { input: randomTensor([2, 64], 2) });
  assert.ok(a.cosine >= 0.9999, `cosine ${a.cosine}`);
});

test('not applicable: no weights, or only tiny ones → a reason, model untouched', async () => {
  const relu = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'relu',
      node: [makeNode('Relu', ['input'], ['output'])],
      input: [tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 8])],
      output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 8])],
    },
  });
  const ctx = context(relu);
  assert.deepEqual(fp16WeightsTechnique.applicability(ctx.analysis, ctx.target), {
    ok: false,
    reason: 'the model stores no weights',
  });
  const r1 = await fp16WeightsTechnique.apply(relu, ctx);
  assert.equal(r1.applied, false);
  assert.match((r1 as { reason: string }).reason, /no float32 weights/);

  const tiny = generateMlpModel({ inputDim: 2, hiddenDims: [3], outputDim: 2 });
  const before = Buffer.from(tiny);
  const r2 = await fp16WeightsTechnique.apply(tiny, context(tiny));
  assert.equal(r2.applied, false);
  assert.match((r2 as { reason: string }).reason, /no float32 weight of at least 16 elements/);
  assert.ok(Buffer.from(tiny).equals(before));
  applied(await fp16WeightsTechnique.apply(tiny, context(tiny, { minElements: 1 })));
  const r3 = await fp16WeightsTechnique.apply(tiny, context(tiny, { compute: 'fp8' }));
  assert.equal(r3.applied, false);
  assert.match((r3 as { reason: string }).reason, /option compute must be/);
});

test("compute 'fp16': the graph computes in float16, I/O stays float32, block-listed ops keep float32 behind Casts; CPU run is checked and its lack of kernels said", async () => {
  const original = encoder({ layerNorm: 'op', opset: 17, layers: 2 });
  const result = applied(
    await fp16WeightsTechnique.apply(original, context(original, { compute: 'fp16', blockList: ['Softmax'] })),
  );
  assert.equal(graphIo(result.model), graphIo(original), 'inputs and outputs are still float32, same names and shapes');
  const g = decodeModel(result.model).graph!;
  const producer = new Map<string, NodeProto>();
  for (const n of g.node!) for (const o of n.output!) producer.set(o, n);
  const castTo = (name: string) => {
    const p = producer.get(name);
    return p?.op_type === 'Cast' ? Number(p.attribute![0].i) : undefined;
  };
  // The input enters through a Cast to float16; the output leaves through a Cast to float32.
  const firstMatMul = g.node!.find((n) => n.op_type === 'MatMul')!;
  assert.equal(castTo(firstMatMul.input![0]), TensorDataType.FLOAT16);
  assert.equal(castTo('output'), TensorDataType.FLOAT);
  // Softmax (block-listed) reads float32 and its result is cast back to float16.
  const softmaxes = g.node!.filter((n) => n.op_type === 'Softmax');
  assert.equal(softmaxes.length, 2);
  for (const s of softmaxes) {
    assert.equal(castTo(s.input![0]), TensorDataType.FLOAT);
    const consumers = g.node!.filter((n) => n.input!.includes(s.output![0]));
    assert.ok(
      consumers.length > 0 &&
        consumers.every((c) => c.op_type === 'Cast' && Number(c.attribute![0].i) === TensorDataType.FLOAT16),
    );
  }
  const weights = g.initializer!.filter((t) => t.dims!.length === 2);
  assert.ok(
    weights.length > 0 && weights.every((t) => t.data_type === TensorDataType.FLOAT16),
    'all weight matrices are float16',
  );
  assert.ok(original.length / result.model.length >= 1.95);
  assert.ok(
    result.notes.some((n) => /CPU provider has no float16 kernel for .*MatMul.*this mode is for GPU targets/.test(n)),
    result.notes.join('\n'),
  );
  assert.ok(
    result.notes.some((n) => /kept in float32 \(.*Softmax: in the block list/.test(n)),
    result.notes.join('\n'),
  );
  const a = await agreement(original, result.model, { input: randomTensor([1, 16, 128], 3) });
  assert.ok(a.cosine >= 0.999, `cosine ${a.cosine}`);
  assert.ok(a.maxAbsError > 0);
});

test("compute 'fp16' retypes Cast/ConstantOfShape, keeps ops with subgraphs in float32 and feeds their outer reads float32", async () => {
  const rand = seededUniform(17);
  const w = float32Tensor(
    'w',
    [32, 32],
    Float32Array.from({ length: 1024 }, () => (rand() * 2 - 1) * 0.3),
  );
  const branch = (name: string, op: string): GraphProto => ({
    name,
    node: [makeNode(op, ['h', 'bias_vec'], [`${name}_out`], { name: `${name}_op` })],
    output: [tensorValueInfo(`${name}_out`, TensorDataType.FLOAT, [null, 32])],
  });
  const graph: GraphProto = {
    name: 'mixed_types',
    node: [
      makeNode('MatMul', ['input', 'w'], ['h'], { name: 'mm' }),
      makeNode('Shape', ['h'], ['h_shape'], { name: 'shape' }),
      makeNode('ConstantOfShape', ['h_shape'], ['ones'], {
        name: 'ones',
        attributes: [attr.tensor('value', float32Tensor('v', [1], [1]))],
      }),
      makeNode('Cast', ['count'], ['count_f'], {
        name: 'count_to_float',
        attributes: [attr.int('to', TensorDataType.FLOAT)],
      }),
      makeNode('Mul', ['ones', 'count_f'], ['counted'], { name: 'mul_count' }),
      makeNode('Add', ['h', 'counted'], ['h2'], { name: 'add_count' }),
      makeNode('If', ['flag'], ['branch_out'], {
        name: 'if',
        attributes: [
          attr.graph('then_branch', branch('then', 'Add')),
          attr.graph('else_branch', branch('else', 'Sub')),
        ],
      }),
      makeNode('Add', ['h2', 'branch_out'], ['output'], { name: 'final_add' }),
    ],
    initializer: [
      w,
      float32Tensor(
        'bias_vec',
        [32],
        Float32Array.from({ length: 32 }, (_, i) => i / 32),
      ),
      int64Tensor('unused_shape', [1], [1]),
    ],
    input: [
      tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 32]),
      tensorValueInfo('count', TensorDataType.INT64, []),
      tensorValueInfo('flag', TensorDataType.BOOL, []),
    ],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 32])],
  };
  const original = encodeModel({
    ir_version: irVersionForOpset(17),
    opset_import: [{ domain: '', version: 17 }],
    graph,
  });
  const { model, report } = await convertToFloat16Compute(original);
  assert.ok(model);
  assert.deepEqual(
    report.keptNodes.map((k) => `${k.node}:${k.why}`),
    ['if:has subgraphs (they stay float32)'],
  );
  const g = decodeModel(model).graph!;
  const find = (name: string) => g.node!.find((n) => n.name === name)!;
  assert.equal(Number(find('count_to_float').attribute![0].i), TensorDataType.FLOAT16);
  assert.equal(find('ones').attribute!.find((a) => a.name === 'value')!.t!.data_type, TensorDataType.FLOAT16);
  // The If's branches read h through a float32 Cast.
  const thenOp = find('if').attribute!.find((a) => a.name === 'then_branch')!.g!.node![0];
  const hRead = thenOp.input![0];
  assert.notEqual(hRead, 'h');
  const cast = g.node!.find((n) => n.output![0] === hRead)!;
  assert.equal(cast.op_type, 'Cast');
  assert.equal(Number(cast.attribute![0].i), TensorDataType.FLOAT);
  for (const flag of [true, false]) {
    const feeds = {
      input: randomTensor([3, 32], 9),
      count: new ort.Tensor('int64', BigInt64Array.of(3n), []),
      flag: new ort.Tensor('bool', [flag], []),
    };
    const a = await agreement(original, model, feeds);
    assert.ok(a.cosine >= 0.999, `flag ${flag}: cosine ${a.cosine}`);
  }
});

test('weights-only: a Constant weight inside an If branch is converted in its own graph', async () => {
  const rand = seededUniform(23);
  const wt = float32Tensor(
    'bw',
    [16, 16],
    Float32Array.from({ length: 256 }, () => rand() - 0.5),
  );
  const branch = (name: string): GraphProto => ({
    name,
    node: [
      constantNode(`${name}_w`, wt),
      makeNode('MatMul', ['input', `${name}_w`], [`${name}_out`], { name: `${name}_mm` }),
    ],
    output: [tensorValueInfo(`${name}_out`, TensorDataType.FLOAT, [null, 16])],
  });
  const graph: GraphProto = {
    name: 'branches',
    node: [
      makeNode('If', ['flag'], ['output'], {
        name: 'if',
        attributes: [attr.graph('then_branch', branch('then')), attr.graph('else_branch', branch('else'))],
      }),
    ],
    input: [
      tensorValueInfo('input', TensorDataType.FLOAT, ['batch', 16]),
      tensorValueInfo('flag', TensorDataType.BOOL, []),
    ],
    output: [tensorValueInfo('output', TensorDataType.FLOAT, ['batch', 16])],
  };
  const original = encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph });
  const { model, report } = storeWeightsAsFloat16(original);
  assert.deepEqual(
    report.converted.map((c) => `${c.name}:${c.source}`),
    ['then_w:constant-node', 'else_w:constant-node'],
  );
  const ops: string[] = [];
  forEachNode(decodeModel(model!).graph!, (n) => ops.push(n.op_type!));
  assert.deepEqual(ops, ['If', 'Constant', 'Cast', 'MatMul', 'Constant', 'Cast', 'MatMul']);
  const a = await agreement(original, model!, {
    input: randomTensor([2, 16], 4),
    flag: new ort.Tensor('bool', [false], []),
  });
  assert.ok(a.cosine >= 0.9999);
});

test('weights-only leaves alone the float32 constants quantized kernels read (after int8-dynamic: per-channel scales)', async () => {
  const { quantizeDynamicInt8 } = await import('../../lib/optimize/techniques/int8Dynamic');
  const original = generateMlpModel({ inputDim: 64, hiddenDims: [128], outputDim: 32 });
  const int8 = quantizeDynamicInt8(original, { minElements: 16 }).model!;
  const { model, report } = storeWeightsAsFloat16(int8);
  assert.equal(
    model,
    undefined,
    'nothing left to convert: the scales must stay float32 constants and the biases are read by the kernels',
  );
  assert.ok(
    report.skipped.some(
      (s) =>
        s.name === 'layer0.weight_scale' &&
        /DynamicQuantizeMatMul\), which needs it as a float32 constant/.test(s.reason),
    ),
    JSON.stringify(report.skipped),
  );
  const result = await fp16WeightsTechnique.apply(int8, context(int8));
  assert.equal(result.applied, false);
  assert.match((result as { reason: string }).reason, /needs it as a float32 constant/);
});
