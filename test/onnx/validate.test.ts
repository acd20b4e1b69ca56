import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attr, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import {
  buildMlpModel,
  CORRUPT_MODELS,
  type CorruptModelKind,
  corruptModelBytes,
  generateMlpModel,
} from '../../lib/onnx/generate';
import { encodeModel, float32Tensor, type GraphProto, type OnnxModel, TensorDataType } from '../../lib/onnx/model';
import { type ModelValidationCode, ModelValidationError, validateModel } from '../../lib/onnx/validate';
import { float32Input, ort, runModel } from './ortSession';

const FLOAT = TensorDataType.FLOAT;

function rejection(bytes: Uint8Array, opts?: { maxBytes?: number }): ModelValidationError {
  try {
    validateModel(bytes, opts);
  } catch (err) {
    assert.ok(err instanceof ModelValidationError, `expected a ModelValidationError, got ${String(err)}`);
    return err;
  }
  assert.fail('the model was accepted');
}

function assertRejected(bytes: Uint8Array, code: ModelValidationCode, ...mentions: string[]): ModelValidationError {
  const err = rejection(bytes);
  assert.equal(err.code, code, `wrong code; message: ${err.message}`);
  for (const m of mentions) assert.ok(err.message.includes(m), `message should mention ${m}: ${err.message}`);
  return err;
}

test('a generated model validates and comes back with its analysis', () => {
  const { model, analysis } = validateModel(generateMlpModel({ inputDim: 6, hiddenDims: [5], outputDim: 4 }));
  assert.equal(model.graph?.node?.length, 5);
  assert.equal(analysis.parameterCount, 6 * 5 + 5 + 5 * 4 + 4);
});

for (const kind of Object.keys(CORRUPT_MODELS) as CorruptModelKind[]) {
  test(`corrupt fixture '${kind}' is rejected with code ${CORRUPT_MODELS[kind].code}, naming the culprit`, async () => {
    const bytes = corruptModelBytes(kind);
    const { code, culprit } = CORRUPT_MODELS[kind];
    assertRejected(bytes, code, culprit);
    // The fixtures are broken for real: onnxruntime refuses them too (external data aside, which it would
    // happily read from outside the upload — the reason Ferry checks the path itself).
    if (kind !== 'external-data-path' && kind !== 'absolute-external-path') {
      await assert.rejects(ort.InferenceSession.create(bytes));
    }
  });
}

test('the dangling-input message names the reading node and the missing tensor', () => {
  const err = assertRejected(corruptModelBytes('dangling-input'), 'dangling-input');
  assert.match(err.message, /node 'layer1_matmul' \(MatMul\) in the main graph reads tensor 'missing_activation'/);
});

test('the cycle message lists the nodes on the cycle in order', () => {
  const err = assertRejected(corruptModelBytes('cycle'), 'cycle');
  assert.match(
    err.message,
    /'layer0_matmul' \(MatMul\) → 'layer0_add' \(Add\) → 'layer0_relu' \(Relu\) → 'layer1_matmul' \(MatMul\) → 'layer1_add' \(Add\) → 'layer0_matmul'/,
  );
});

test('the size-mismatch message gives dims, expected and actual byte counts', () => {
  const err = assertRejected(corruptModelBytes('initializer-size-mismatch'), 'initializer-size-mismatch');
  assert.match(
    err.message,
    /initializer 'layer0\.weight' in the main graph has dims \[4, 8\] \(32 FLOAT elements\), which take 128 bytes, but its raw_data holds 124 bytes/,
  );
});

test('typed-field initializers are checked too (float_data / int64_data counts)', () => {
  const model = buildMlpModel({ inputDim: 3, hiddenDims: [], outputDim: 2 });
  const bias = model.graph!.initializer!.find((t) => t.name === 'layer0.bias')!;
  delete bias.raw_data;
  bias.float_data = [0.5, 0.25];
  validateModel(encodeModel(model)); // two values for dims [2]: fine
  bias.float_data = [0.5, 0.25, 1];
  assertRejected(
    encodeModel(model),
    'initializer-size-mismatch',
    "'layer0.bias'",
    'float_data holds 3 entries (expected 2)',
  );
  delete bias.float_data;
  bias.int64_data = [1, 2];
  assertRejected(encodeModel(model), 'initializer-size-mismatch', 'its values are in int64_data');
});

test('a Constant node tensor with the wrong size is rejected, naming the node', () => {
  const model = buildMlpModel({ inputDim: 3, hiddenDims: [4], outputDim: 2, weightsIn: 'constants' });
  const constant = model.graph!.node!.find((n) => n.name === 'layer1.bias_constant')!;
  constant.attribute![0].t!.dims = [3];
  assertRejected(encodeModel(model), 'initializer-size-mismatch', "'layer1.bias_constant' (Constant)", 'dims [3]');
});

test('ir_version and opsets are checked against what the bundled onnxruntime loads', () => {
  const withHeader = (patch: Partial<OnnxModel>): Uint8Array =>
    encodeModel({ ...buildMlpModel({ inputDim: 2, hiddenDims: [], outputDim: 2 }), ...patch });
  const model = buildMlpModel({ inputDim: 2, hiddenDims: [], outputDim: 2 });
  delete model.ir_version;
  assertRejected(encodeModel(model), 'unsupported-ir-version', 'no ir_version');
  assertRejected(withHeader({ ir_version: 14 }), 'unsupported-ir-version', 'IR version 14', 'IR versions 1 to 13');
  assertRejected(
    withHeader({ opset_import: [{ domain: '', version: 27 }] }),
    'unsupported-opset',
    "domain 'ai.onnx'",
    'up to opset 26',
  );
  assertRejected(withHeader({ opset_import: [{ domain: '', version: 5 }] }), 'unsupported-opset', 'opset 5', 'convert');
  assertRejected(
    withHeader({
      opset_import: [
        { domain: '', version: 17 },
        { domain: 'ai.onnx.ml', version: 6 },
      ],
    }),
    'unsupported-opset',
    'ai.onnx.ml',
  );
  assertRejected(withHeader({ opset_import: [] }), 'missing-opset-import');
  // 'ai.onnx' is the default domain spelled out: accepted.
  validateModel(withHeader({ opset_import: [{ domain: 'ai.onnx', version: 17 }] }));
});

test('a node in a domain the model does not import is rejected', () => {
  const model = buildMlpModel({ inputDim: 2, hiddenDims: [], outputDim: 2 });
  model.graph!.node!.push(makeNode('Gelu2', ['output'], ['extra'], { name: 'vendor_op', domain: 'vendor.ops' }));
  assertRejected(encodeModel(model), 'missing-opset-import', "'vendor_op'", "'vendor.ops'");
});

test('garbage that protobuf happily decodes is still not accepted as ONNX', () => {
  // Field 15 (varint) twice: valid protobuf, but no ONNX field at all.
  assertRejected(Uint8Array.from([0x78, 0x01, 0x78, 0x02]), 'not-protobuf', 'not an ONNX model');
  // A JSON file uploaded by mistake.
  assertRejected(new TextEncoder().encode('{"model": "resnet"}'), 'not-protobuf');
  // A graph and nothing else: no ONNX writer produces that.
  const headless = buildMlpModel({ inputDim: 2, hiddenDims: [], outputDim: 2 });
  assertRejected(encodeModel({ graph: headless.graph }), 'not-protobuf', 'neither ir_version nor opset_import');
  // A header without a graph.
  assertRejected(encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }] }), 'no-graph');
  // A graph with nothing in it.
  assertRejected(
    encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'g' } }),
    'empty-model',
  );
});

test('size limits: the file itself and declared external data', () => {
  const bytes = generateMlpModel({ inputDim: 16, hiddenDims: [16], outputDim: 4 });
  assert.equal(rejection(bytes, { maxBytes: bytes.length - 1 }).code, 'too-large');
  validateModel(bytes, { maxBytes: bytes.length });

  const model = buildMlpModel({ inputDim: 16, hiddenDims: [16], outputDim: 4 });
  const w = model.graph!.initializer![0];
  delete w.raw_data;
  w.data_location = 1;
  w.external_data = [
    { key: 'location', value: 'weights/layer0.bin' },
    { key: 'length', value: String(16 * 16 * 4) },
  ];
  const external = encodeModel(model);
  const ok = validateModel(external);
  assert.deepEqual(ok.analysis.externalDataFiles, ['weights/layer0.bin']);
  assert.equal(rejection(external, { maxBytes: external.length + 100 }).code, 'too-large');
  w.external_data[1].value = '12';
  assertRejected(encodeModel(model), 'initializer-size-mismatch', 'external data length is 12 bytes');
  w.external_data = [{ key: 'location', value: 'C:\\weights.bin' }];
  assertRejected(encodeModel(model), 'external-data-path', 'C:\\weights.bin');
  w.external_data = [{ key: 'location', value: 'sub\\..\\..\\x.bin' }];
  assertRejected(encodeModel(model), 'external-data-path');
});

test('duplicate definitions and unproduced graph outputs are rejected', () => {
  const dup = buildMlpModel({ inputDim: 2, hiddenDims: [2], outputDim: 2 });
  dup.graph!.node!.find((n) => n.name === 'layer1_add')!.output = ['layer0_pre'];
  assertRejected(encodeModel(dup), 'duplicate-name', "'layer0_pre'", "'layer0_add' (Add)", "'layer1_add' (Add)");

  const missingOut = buildMlpModel({ inputDim: 2, hiddenDims: [2], outputDim: 2 });
  missingOut.graph!.output!.push(tensorValueInfo('probabilities', FLOAT, ['batch', 2]));
  assertRejected(encodeModel(missingOut), 'dangling-output', "'probabilities'");
});

/** y = If(cond) then x·W + b else x − b, where both branches read the outer x, W and b. */
function ifModel(thenInputs: string[] = ['x', 'W']): OnnxModel {
  const thenBranch: GraphProto = {
    name: 'then_graph',
    node: [
      makeNode('MatMul', thenInputs, ['xw'], { name: 'then_matmul' }),
      makeNode('Add', ['xw', 'b'], ['then_out'], { name: 'then_add' }),
    ],
    output: [tensorValueInfo('then_out', FLOAT, ['n', 3])],
  };
  const elseBranch: GraphProto = {
    name: 'else_graph',
    node: [makeNode('Sub', ['x', 'b'], ['else_out'], { name: 'else_sub' })],
    output: [tensorValueInfo('else_out', FLOAT, ['n', 3])],
  };
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'if_model',
      node: [
        makeNode('Relu', ['x_raw'], ['x'], { name: 'relu' }),
        makeNode('If', ['cond'], ['y'], {
          name: 'choose',
          attributes: [attr.graph('then_branch', thenBranch), attr.graph('else_branch', elseBranch)],
        }),
      ],
      initializer: [float32Tensor('W', [3, 3], [1, 0, 0, 0, 2, 0, 0, 0, 3]), float32Tensor('b', [3], [10, 20, 30])],
      input: [tensorValueInfo('x_raw', FLOAT, ['n', 3]), tensorValueInfo('cond', TensorDataType.BOOL, [])],
      output: [tensorValueInfo('y', FLOAT, ['n', 3])],
    },
  };
}

test('an If whose branches read outer-scope names validates, and runs in onnxruntime as validated', async () => {
  const bytes = encodeModel(ifModel());
  const { analysis } = validateModel(bytes);
  assert.deepEqual(analysis.opHistogram, { Relu: 1, If: 1, MatMul: 1, Add: 1, Sub: 1 });
  assert.equal(analysis.macsEstimate, 9, 'the then-branch MatMul (1×3·3×3) is found through the outer scope shapes');
  const x = float32Input(Float32Array.from([1, -1, 2]), [1, 3]);
  const yes = await runModel(bytes, { x_raw: x, cond: new ort.Tensor('bool', [true], []) });
  assert.deepEqual(Array.from(yes.y.data as Float32Array), [11, 20, 36]);
  const no = await runModel(bytes, { x_raw: x, cond: new ort.Tensor('bool', [false], []) });
  assert.deepEqual(Array.from(no.y.data as Float32Array), [-9, -20, -28]);
});

test('a subgraph reading a name defined nowhere is rejected, with the subgraph located', async () => {
  const bytes = encodeModel(ifModel(['x', 'W_missing']));
  assertRejected(
    bytes,
    'dangling-input',
    "'then_matmul' (MatMul)",
    "'W_missing'",
    "subgraph 'then_branch' of node 'choose' (If)",
  );
  await assert.rejects(ort.InferenceSession.create(bytes));
});

test('a subgraph reading an outer value that depends on the If itself is a cycle', () => {
  const model = ifModel();
  // relu now reads the If's output while the then-branch reads relu's output: If → relu → If.
  model.graph!.node![0].input = ['y'];
  model.graph!.input = model.graph!.input!.filter((i) => i.name !== 'x_raw');
  assertRejected(encodeModel(model), 'cycle', "'choose' (If)", "'relu' (Relu)");
});
