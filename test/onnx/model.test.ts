import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { analyzeModel } from '../../lib/onnx/analyze';
import { buildMlpModel, generateMlpModel, seededUniform } from '../../lib/onnx/generate';
import {
  AttributeType,
  decodeModel,
  encodeModel,
  float32Tensor,
  int64Tensor,
  TensorDataType,
  type TensorProto,
  tensorToBigInt64,
  tensorToFloat32,
} from '../../lib/onnx/model';
import { UNKNOWN_FIELDS } from '../../lib/onnx/schema';
import { validateModel } from '../../lib/onnx/validate';
import { float32Input, ort, runModel } from './ortSession';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'onnx');
const INT64_MAX = 2n ** 63n - 1n;
const readFixture = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, name)));

test('wire format: field numbers and packing follow the ONNX spec', () => {
  // ir_version = 1 (varint), producer_name = 2, opset_import = 8 { domain = 1, version = 2 }
  assert.deepEqual(
    Array.from(encodeModel({ ir_version: 8, producer_name: 'x', opset_import: [{ domain: '', version: 17 }] })),
    [0x08, 0x08, 0x12, 0x01, 0x78, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x11],
  );
  // TensorProto inside graph(7).initializer(5): dims(1) unpacked, data_type(2), float_data(4) packed.
  const bytes = encodeModel({ graph: { initializer: [{ dims: [2, 1], data_type: 1, float_data: [1, 2] }] } });
  assert.deepEqual(
    Array.from(bytes),
    [0x3a, 0x12, 0x2a, 0x10, 0x08, 0x02, 0x08, 0x01, 0x10, 0x01, 0x22, 0x08, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40],
  );
});

for (const fixture of ['reference-runnable.onnx', 'reference-kitchen-sink.onnx']) {
  test(`${fixture} (written by the official onnx package) re-encodes byte for byte`, () => {
    const original = readFixture(fixture);
    const model = decodeModel(original);
    assert.equal(model[UNKNOWN_FIELDS], undefined, 'every top-level field is known to the schema');
    assert.deepEqual(Buffer.from(encodeModel(model)), Buffer.from(original));
  });
}

test('the reference model decodes field for field: functions, attribute refs, INT64_MAX, metadata', () => {
  const model = decodeModel(readFixture('reference-runnable.onnx'));
  assert.equal(model.ir_version, 10);
  assert.deepEqual(
    model.opset_import?.map((o) => [o.domain, o.version]),
    [
      ['', 21],
      ['local.fn', 1],
    ],
  );
  assert.deepEqual(
    model.metadata_props?.map((p) => [p.key, p.value]),
    [
      ['author', 'ferry tests'],
      ['license', 'Apache-2.0'],
    ],
  );
  const fn = model.functions![0];
  assert.equal(fn.name, 'ScaledRelu');
  assert.equal(fn.domain, 'local.fn');
  assert.equal(fn.attribute_proto![0].name, 'alpha');
  assert.equal(fn.attribute_proto![0].f, 2);
  assert.equal(fn.node![1].attribute![0].ref_attr_name, 'alpha');
  const ends = model.graph!.initializer!.find((t) => t.name === 'ends')!;
  assert.deepEqual(ends.int64_data, [INT64_MAX]);
  assert.deepEqual(model.graph!.initializer!.find((t) => t.name === 'starts')!.int64_data, [1]);
  const ifNode = model.graph!.node![0];
  const thenBranch = ifNode.attribute!.find((x) => x.name === 'then_branch')!;
  assert.equal(thenBranch.type, AttributeType.GRAPH);
  assert.equal(thenBranch.g!.node![0].name, 'then_matmul');
  assert.deepEqual(validateModel(readFixture('reference-runnable.onnx')).analysis.customDomains, []);
});

test('the reference model gives identical outputs in onnxruntime before and after decode → encode', async () => {
  const original = readFixture('reference-runnable.onnx');
  const reencoded = encodeModel(decodeModel(original));
  const x = float32Input(Float32Array.from([1, -1, 2, 0.5, 0.25, -3]), [2, 3]);
  for (const cond of [true, false]) {
    const feeds = { x, cond: new ort.Tensor('bool', [cond], []) };
    const a = await runModel(original, feeds);
    const b = await runModel(reencoded, feeds);
    assert.deepEqual(Array.from(b.y.data as Float32Array), Array.from(a.y.data as Float32Array));
    assert.deepEqual(a.y.dims, [2, 2]);
  }
  // Worked by hand for row 1: x·W = [2.25, 2.75, 3.25] → Relu·0.5 → [1.125, 1.375, 1.625] → columns 1.. (INT64_MAX end)
  const yes = await runModel(reencoded, { x, cond: new ort.Tensor('bool', [true], []) });
  assert.deepEqual(Array.from(yes.y.data as Float32Array).slice(0, 2), [1.375, 1.625]);
});

test('the kitchen-sink model keeps every kind of field: 64-bit extremes, strings, sparse, types, external data', () => {
  const model = decodeModel(readFixture('reference-kitchen-sink.onnx'));
  const g = model.graph!;
  const init = (name: string): TensorProto => g.initializer!.find((t) => t.name === name)!;
  assert.deepEqual(init('u64').uint64_data, [2n ** 64n - 1n, 7]);
  assert.deepEqual(init('i64_min').int64_data, [-(2n ** 63n), INT64_MAX]);
  assert.deepEqual(
    init('strs').string_data!.map((s) => new TextDecoder().decode(s)),
    ['hello', 'wörld'],
  );
  assert.deepEqual(Array.from(tensorToFloat32(init('f16'))), [1, -2]);
  assert.deepEqual(Array.from(tensorToFloat32(init('f64'))), [1, -0.5]);
  assert.deepEqual(init('segmented').segment, { begin: 0, end: 2 });
  const ext = init('ext_weight');
  assert.equal(ext.data_location, 1);
  assert.deepEqual(
    ext.external_data!.map((e) => [e.key, e.value]),
    [
      ['location', 'weights/ext.bin'],
      ['offset', '4096'],
      ['length', '16'],
    ],
  );
  assert.deepEqual(g.sparse_initializer![0].dims, [10, 10]);
  assert.deepEqual(g.sparse_initializer![0].indices!.int64_data, [0, 17, 99]);

  const node = g.node![0];
  assert.equal(node.domain, 'test.domain');
  assert.equal(node.overload, 'v2');
  assert.deepEqual(node.input, ['a', '', 'b']);
  const a = (name: string) => node.attribute!.find((x) => x.name === name)!;
  assert.equal(a('i').i, INT64_MAX);
  assert.deepEqual(a('ints').ints, [-1, 0, INT64_MAX]);
  assert.equal(a('f').f, 1.5);
  assert.equal(new TextDecoder().decode(a('s').s), 'text');
  assert.equal(a('graphs').graphs!.length, 2);
  assert.equal(a('tp').tp!.tensor_type!.shape!.dim![1].dim_param, 'm');
  assert.equal(a('tps').type_protos![0].optional_type!.elem_type!.tensor_type!.elem_type, TensorDataType.INT32);
  assert.equal(a('tps').type_protos![1].map_type!.key_type, TensorDataType.INT64);
  assert.deepEqual(a('sp').sparse_tensor!.values!.float_data, [1.5, -2, 3.25]);

  assert.equal(g.input![0].type!.denotation, 'TENSOR');
  assert.equal(g.input![0].type!.tensor_type!.shape!.dim![1].denotation, 'DATA_BATCH');
  assert.deepEqual(g.input![0].type!.tensor_type!.shape!.dim![0], {}, 'an unknown dim has neither value nor param');
  assert.equal(g.input![1].type!.sequence_type!.elem_type!.tensor_type!.elem_type, TensorDataType.FLOAT);
  assert.equal(g.input![2].type!.sparse_tensor_type!.elem_type, TensorDataType.FLOAT);
  assert.equal(g.quantization_annotation![0].quant_parameter_tensor_names![0].value, 'a_scale');
  assert.equal(model.model_version, 42);
  assert.equal(model.functions![0].overload, 'o1');
  assert.equal(model.training_info![0].update_binding![0].key, 'v');

  const analysis = analyzeModel(model);
  assert.deepEqual(analysis.externalDataFiles, ['weights/ext.bin']);
  // 'Everything' is no function the model defines (that is 'Fn'), so test.domain needs an operator library.
  assert.deepEqual(analysis.customDomains, ['test.domain']);
});

test('fields unknown to the schema survive decode → encode, and onnxruntime still computes the same', async () => {
  const plain = generateMlpModel({ inputDim: 5, hiddenDims: [7], outputDim: 3, seed: 8 });
  // Append field 100 (varint 42) to the ModelProto: appending a field to a protobuf message is valid.
  const withTopLevel = new Uint8Array([...plain, 0xa0, 0x06, 0x2a]);
  const model = decodeModel(withTopLevel);
  assert.deepEqual(
    model[UNKNOWN_FIELDS]?.map((c) => Array.from(c)),
    [[0xa0, 0x06, 0x2a]],
  );
  // And a length-delimited field 50 inside a node, the way a newer ONNX release might add one.
  model.graph!.node![0][UNKNOWN_FIELDS] = [Uint8Array.from([0x92, 0x03, 0x02, 0x68, 0x69])];
  const encoded = encodeModel(model);
  const again = decodeModel(encoded);
  assert.deepEqual(
    again[UNKNOWN_FIELDS]?.map((c) => Array.from(c)),
    [[0xa0, 0x06, 0x2a]],
  );
  assert.deepEqual(
    again.graph!.node![0][UNKNOWN_FIELDS]?.map((c) => Array.from(c)),
    [[0x92, 0x03, 0x02, 0x68, 0x69]],
  );
  assert.deepEqual(Buffer.from(encodeModel(again)), Buffer.from(encoded));

  const rand = seededUniform(3);
  const x = float32Input(
    Float32Array.from({ length: 10 }, () => rand() - 0.5),
    [2, 5],
  );
  const a = await runModel(plain, { input: x });
  const b = await runModel(encoded, { input: x });
  assert.deepEqual(Array.from(b.output.data as Float32Array), Array.from(a.output.data as Float32Array));
});

test('decode → encode of an untouched generated model is byte-identical and computes identically', async () => {
  const bytes = generateMlpModel({
    inputDim: 64,
    hiddenDims: [128, 64],
    outputDim: 10,
    seed: 21,
    weightsIn: 'constants',
  });
  const reencoded = encodeModel(decodeModel(bytes));
  assert.deepEqual(Buffer.from(reencoded), Buffer.from(bytes));
  const rand = seededUniform(5);
  const x = float32Input(
    Float32Array.from({ length: 3 * 64 }, () => rand() * 2 - 1),
    [3, 64],
  );
  const [a, b] = [await runModel(bytes, { input: x }), await runModel(reencoded, { input: x })];
  assert.deepEqual(Array.from(b.output.data as Float32Array), Array.from(a.output.data as Float32Array));
});

test('a Slice whose INT64_MAX end was built in JS runs as intended after encoding', async () => {
  // Opset 9 Slice takes ends as an attribute (ints); opset 13 as an INT64 input. Both must keep INT64_MAX exact.
  const model = buildMlpModel({ inputDim: 4, hiddenDims: [], outputDim: 6, seed: 2 });
  const g = model.graph!;
  g.node!.push({ op_type: 'Slice', name: 'tail', input: ['output', 'starts', 'ends', 'axes'], output: ['tail'] });
  g.initializer!.push(
    int64Tensor('starts', [1], [2]),
    int64Tensor('ends', [1], [INT64_MAX]),
    int64Tensor('axes', [1], [1]),
  );
  g.initializer!.push({ name: 'ends_typed', dims: [1], data_type: TensorDataType.INT64, int64_data: [INT64_MAX] });
  g.output = [...g.output!, { name: 'tail' }];
  const bytes = encodeModel(model);
  const decoded = decodeModel(bytes);
  assert.deepEqual(Array.from(tensorToBigInt64(decoded.graph!.initializer!.find((t) => t.name === 'ends')!)), [
    INT64_MAX,
  ]);
  assert.deepEqual(decoded.graph!.initializer!.find((t) => t.name === 'ends_typed')!.int64_data, [INT64_MAX]);
  const r = await runModel(bytes, { input: float32Input(new Float32Array(4).fill(1), [1, 4]) });
  assert.deepEqual(r.tail.dims, [1, 4]);
  assert.deepEqual(Array.from(r.tail.data as Float32Array), Array.from(r.output.data as Float32Array).slice(2));
});

test('an unsafe JS number for an int64 field is clamped, not wrapped to INT64_MIN', () => {
  const bytes = encodeModel({
    graph: { initializer: [{ name: 't', dims: [1], data_type: 7, int64_data: [2 ** 63] }] },
  });
  assert.deepEqual(decodeModel(bytes).graph!.initializer![0].int64_data, [INT64_MAX]);
});

test('tensor helpers: float32Tensor ↔ tensorToFloat32, typed fields, and wrong types refused', () => {
  const values = Float32Array.from([0.1, -2, 3.5, 1e-8, 65504, -0]);
  const t = float32Tensor('w', [2, 3], values);
  assert.equal(t.raw_data!.length, 24);
  assert.deepEqual(
    tensorToFloat32(decodeModel(encodeModel({ graph: { initializer: [t] } })).graph!.initializer![0]),
    values,
  );
  assert.deepEqual(
    Array.from(tensorToFloat32({ data_type: TensorDataType.FLOAT, dims: [2], float_data: [1, 2] })),
    [1, 2],
  );
  // bfloat16 0x3fc0 = 1.5; float16 0x3c00 = 1, 0x0001 = smallest subnormal
  assert.deepEqual(
    Array.from(tensorToFloat32({ data_type: TensorDataType.BFLOAT16, dims: [1], int32_data: [0x3fc0] })),
    [1.5],
  );
  assert.deepEqual(
    Array.from(tensorToFloat32({ data_type: TensorDataType.FLOAT16, dims: [2], int32_data: [0x3c00, 0x0001] })),
    [1, Math.fround(2 ** -24)],
  );
  assert.throws(() => float32Tensor('bad', [2, 2], [1, 2, 3]), /do not fill dims \[2, 2\]/);
  assert.throws(() => tensorToFloat32(int64Tensor('i', [1], [1])), /INT64, not a floating-point type/);
  assert.throws(() => tensorToFloat32({ name: 'e', data_type: 1, data_location: 1 }), /external file/);
});
