/**
 * The checks added for upload: custom-op domains, dimension overflow, subgraph depth, external files on disk,
 * and the streaming walk that leaves large weights in the file (their byte ranges recorded, sizes checked).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { attr, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { buildMlpModel } from '../../lib/onnx/generate';
import { encodeModel, type GraphProto, type OnnxModel, TensorDataType } from '../../lib/onnx/model';
import {
  type ModelValidationCode,
  ModelValidationError,
  type ValidateOptions,
  validateModel,
  validateModelFile,
} from '../../lib/onnx/validate';
import { encodeVarint, RAW_DATA_MARKER_FIELD } from '../../lib/onnx/validate/wireSkeleton';

function assertRejected(run: () => unknown, code: ModelValidationCode, ...mentions: string[]): void {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof ModelValidationError, `expected a ModelValidationError, got ${String(err)}`);
    assert.equal(err.code, code, `wrong code; message: ${err.message}`);
    for (const m of mentions) assert.ok(err.message.includes(m), `message should mention ${m}: ${err.message}`);
    return;
  }
  assert.fail('the model was accepted');
}

const small = (): OnnxModel => buildMlpModel({ inputDim: 3, hiddenDims: [4], outputDim: 2 });
const bytesOf = (model: OnnxModel, opts?: ValidateOptions) => () => validateModel(encodeModel(model), opts);

test('a node of a custom-op domain is refused at upload, naming the node and the domain', () => {
  const model = small();
  model.opset_import!.push({ domain: 'vendor.ops', version: 1 });
  model.graph!.node!.push(makeNode('FancyGelu', ['output'], ['extra'], { name: 'vendor_gelu', domain: 'vendor.ops' }));
  assertRejected(bytesOf(model), 'custom-op-domain', "'vendor_gelu' (FancyGelu)", "'vendor.ops'");
  // com.microsoft has kernels in onnxruntime: accepted.
  model.opset_import![1] = { domain: 'com.microsoft', version: 1 };
  model.graph!.node![model.graph!.node!.length - 1].domain = 'com.microsoft';
  validateModel(encodeModel(model));
});

test('a call of a function the model defines is no custom op', () => {
  const model = small();
  model.opset_import!.push({ domain: 'local.fns', version: 1 });
  model.functions = [
    {
      name: 'Twice',
      domain: 'local.fns',
      input: ['a'],
      output: ['b'],
      node: [makeNode('Add', ['a', 'a'], ['b'])],
      opset_import: [{ domain: '', version: 17 }],
    },
  ];
  model.graph!.node!.push(makeNode('Twice', ['output'], ['doubled'], { name: 'call_twice', domain: 'local.fns' }));
  validateModel(encodeModel(model));
});

test('dims whose product overflows int64 are refused, naming the tensor', () => {
  const model = small();
  const w = model.graph!.initializer![0];
  w.dims = [2 ** 40, 2 ** 40];
  assertRejected(bytesOf(model), 'dimension-overflow', `'${w.name}'`, 'overflows');
  w.dims = [2 ** 30, 2 ** 30];
  assertRejected(bytesOf(model), 'dimension-overflow', `'${w.name}'`);
  w.dims = [0, 2 ** 40, 2 ** 40]; // an empty tensor, whatever the other dims: only its bytes are wrong
  assertRejected(bytesOf(model), 'initializer-size-mismatch', `'${w.name}'`);
});

/** If nodes nested `depth` levels: each then-branch holds the next If, the innermost an Identity. */
function nestedIfModel(depth: number): OnnxModel {
  const FLOAT = TensorDataType.FLOAT;
  const branch = (level: number): GraphProto => {
    const out = `out_${level}`;
    if (level === depth) {
      return {
        name: `g${level}`,
        node: [makeNode('Identity', ['x'], [out])],
        output: [tensorValueInfo(out, FLOAT, [1])],
      };
    }
    const ifNode = makeNode('If', ['cond'], [out], {
      name: `if_${level}`,
      attributes: [
        attr.graph('then_branch', branch(level + 1)),
        attr.graph('else_branch', {
          name: `e${level}`,
          node: [makeNode('Identity', ['x'], [`else_${level}`])],
          output: [tensorValueInfo(`else_${level}`, FLOAT, [1])],
        }),
      ],
    });
    return { name: `g${level}`, node: [ifNode], output: [tensorValueInfo(out, FLOAT, [1])] };
  };
  const main = branch(0);
  main.input = [tensorValueInfo('x', FLOAT, [1]), tensorValueInfo('cond', TensorDataType.BOOL, [])];
  return { ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: main };
}

test('subgraphs nested past the bound are refused before anything recursive reads them', () => {
  validateModel(encodeModel(nestedIfModel(3)), { maxSubgraphDepth: 3 });
  assertRejected(bytesOf(nestedIfModel(4), { maxSubgraphDepth: 3 }), 'subgraph-too-deep', 'more than 3 levels');
  assertRejected(bytesOf(nestedIfModel(17)), 'subgraph-too-deep', 'more than 16 levels');
});

test('large weights stay in the file: their byte ranges are recorded and their sizes still checked', async () => {
  const model = buildMlpModel({ inputDim: 256, hiddenDims: [128], outputDim: 2, seed: 3 });
  const bytes = encodeModel(model);
  const { tensorRanges, model: decoded, analysis } = validateModel(bytes);
  const weight = model.graph!.initializer!.find((t) => t.name === 'layer0.weight')!;
  assert.equal(tensorRanges.length, 1, 'only the 128 KiB weight is over the inline bound');
  const [range] = tensorRanges;
  assert.equal(range.length, 256 * 128 * 4);
  assert.ok(Buffer.from(bytes.subarray(range.offset, range.offset + range.length)).equals(weight.raw_data!));
  assert.equal(decoded.graph!.initializer!.find((t) => t.name === 'layer0.weight')!.raw_data, undefined);
  assert.equal(analysis.weightBytes, 256 * 128 * 4 + 128 * 4 + 128 * 2 * 4 + 2 * 4);

  weight.dims = [256, 127];
  assertRejected(bytesOf(model), 'initializer-size-mismatch', "'layer0.weight'", 'raw_data holds 131072 bytes');

  // The same from a file, read in windows.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-validate-'));
  try {
    await writeFile(path.join(dir, 'm.onnx'), bytes);
    assert.deepEqual(validateModelFile(path.join(dir, 'm.onnx')).tensorRanges, tensorRanges);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a marker field planted in the file is dropped, never taken for a stripped weight', () => {
  const model = small();
  const bias = model.graph!.initializer!.find((t) => t.name === 'layer0.bias')!;
  // The marker field with index 0: what the walk itself writes for a stripped raw_data.
  const unknown = Uint8Array.from([...encodeVarint(RAW_DATA_MARKER_FIELD * 8), 0]);
  (bias as Record<string, unknown>).$unknownFields = [unknown];
  const { model: decoded } = validateModel(encodeModel(model));
  const back = decoded.graph!.initializer!.find((t) => t.name === 'layer0.bias')!;
  assert.equal(back.raw_data?.length, 16, 'the inline raw_data is the one kept');
  assert.equal((back as Record<string, unknown>).$unknownFields, undefined);
});

function externalModel(location: string, length: number): OnnxModel {
  const model = small();
  const w = model.graph!.initializer!.find((t) => t.name === 'layer0.weight')!;
  delete w.raw_data;
  w.data_location = 1;
  w.external_data = [
    { key: 'location', value: location },
    { key: 'offset', value: '8' },
    { key: 'length', value: String(length) },
  ];
  return model;
}

test('external data files: missing, short and symlinked ones are refused; a complete one is listed', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-validate-'));
  try {
    const file = path.join(dir, 'model.onnx');
    await writeFile(file, encodeModel(externalModel('weights/w.bin', 3 * 4 * 4)));
    assertRejected(() => validateModelFile(file), 'external-data-missing', "'layer0.weight'", 'weights/w.bin');

    await mkdir(path.join(dir, 'weights'));
    await writeFile(path.join(dir, 'weights', 'w.bin'), new Uint8Array(8 + 47));
    assertRejected(() => validateModelFile(file), 'external-data-short', 'bytes 8 to 56', 'only 55 bytes');

    await writeFile(path.join(dir, 'weights', 'w.bin'), new Uint8Array(8 + 48));
    assert.deepEqual(validateModelFile(file).externalFiles, [{ location: 'weights/w.bin', sizeBytes: 56 }]);
    // Without a folder to look in (bytes alone), only the path is checked.
    assert.deepEqual(validateModel(encodeModel(externalModel('weights/w.bin', 48))).externalFiles, []);

    const outside = await mkdtemp(path.join(os.tmpdir(), 'ferry-outside-'));
    await writeFile(path.join(outside, 'secret.bin'), new Uint8Array(100));
    await symlink(path.join(outside, 'secret.bin'), path.join(dir, 'link.bin'));
    await writeFile(file, encodeModel(externalModel('link.bin', 48)));
    assertRejected(() => validateModelFile(file), 'external-data-path', "'link.bin' is a symbolic link");
    await symlink(outside, path.join(dir, 'linkdir'));
    await writeFile(file, encodeModel(externalModel('linkdir/secret.bin', 48)));
    assertRejected(() => validateModelFile(file), 'external-data-path', "'linkdir' is a symbolic link");
    await rm(outside, { recursive: true });
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('files over the configured size are refused before they are read', () => {
  const bytes = encodeModel(small());
  assertRejected(() => validateModel(bytes, { maxBytes: 100 }), 'too-large', 'over the limit of 100 bytes');
});
