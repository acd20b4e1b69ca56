/**
 * The validator under fuzzing: seeded mutations (lib/onnx/validate/fuzzMutations.ts) of several real models.
 * Whatever the bytes, validateModel returns or throws a ModelValidationError (never another error, which
 * would crash the upload stage as a retryable failure), within a time bound per file.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { attr, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { generateCnnModel } from '../../lib/onnx/cnn';
import { generateMlpModel } from '../../lib/onnx/generate';
import { encodeModel, float32Tensor, TensorDataType } from '../../lib/onnx/model';
import { ModelValidationError, validateModel } from '../../lib/onnx/validate';
import { mutateModel } from '../../lib/onnx/validate/fuzzMutations';

const FIXTURES = path.resolve(__dirname, '../fixtures/onnx');
const FLOAT = TensorDataType.FLOAT;

/** An If whose branch reads outer names and holds a Loop-free nested If: subgraph scopes for the mutations. */
function ifModelBytes(): Uint8Array {
  const inner = {
    name: 'inner',
    node: [makeNode('Add', ['x', 'b'], ['inner_out'], { name: 'inner_add' })],
    output: [tensorValueInfo('inner_out', FLOAT, ['n', 3])],
  };
  const thenBranch = {
    name: 'then',
    node: [
      makeNode('If', ['cond'], ['then_out'], {
        name: 'nested_if',
        attributes: [attr.graph('then_branch', inner), attr.graph('else_branch', inner)],
      }),
    ],
    output: [tensorValueInfo('then_out', FLOAT, ['n', 3])],
  };
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'if_model',
      node: [
        makeNode('If', ['cond'], ['y'], {
          name: 'outer_if',
          attributes: [attr.graph('then_branch', thenBranch), attr.graph('else_branch', inner)],
        }),
      ],
      initializer: [float32Tensor('b', [3], [1, 2, 3])],
      input: [tensorValueInfo('x', FLOAT, ['n', 3]), tensorValueInfo('cond', TensorDataType.BOOL, [])],
      output: [tensorValueInfo('y', FLOAT, ['n', 3])],
    },
  });
}

const BASES: Record<string, Uint8Array> = {
  mlp: generateMlpModel({ inputDim: 6, hiddenDims: [5], outputDim: 3, seed: 1 }),
  'mlp-constants': generateMlpModel({ inputDim: 4, hiddenDims: [3], outputDim: 2, weightsIn: 'constants', seed: 2 }),
  // A 72 KiB weight: over the inline bound, so its raw_data is left in the file by the walk.
  'mlp-large-weight': generateMlpModel({ inputDim: 144, hiddenDims: [128], outputDim: 2, seed: 3 }),
  cnn: generateCnnModel({
    inputShape: [3, 8, 8],
    convs: [{ channels: 4 }, { channels: 4, stride: 2 }],
    classes: 3,
    seed: 4,
  }),
  if: ifModelBytes(),
  'kitchen-sink': readFileSync(path.join(FIXTURES, 'reference-kitchen-sink.onnx')),
  runnable: readFileSync(path.join(FIXTURES, 'reference-runnable.onnx')),
};

/** Per file: the validator is linear in the file; a second is far above any base here (they take well under 10 ms). */
const TIME_BOUND_MS = 1000;
const CASES_PER_BASE = 80;

test('every base model but the kitchen sink (a custom-op domain) is valid before mutation', () => {
  for (const [name, bytes] of Object.entries(BASES)) {
    if (name === 'kitchen-sink') assert.throws(() => validateModel(bytes), { code: 'custom-op-domain' });
    else assert.doesNotThrow(() => validateModel(bytes), `base ${name}`);
  }
});

test(`${CASES_PER_BASE} seeded mutations of each base: only ModelValidationError, each within ${TIME_BOUND_MS} ms`, () => {
  const codes = new Map<string, number>();
  let accepted = 0;
  let slowest = 0;
  Object.entries(BASES).forEach(([name, base], b) => {
    for (let i = 0; i < CASES_PER_BASE; i++) {
      const seed = b * 100_000 + i;
      const { mutation, bytes } = mutateModel(base, seed);
      const started = performance.now();
      try {
        validateModel(bytes);
        accepted++;
      } catch (err) {
        if (!(err instanceof ModelValidationError)) {
          assert.fail(`base ${name}, seed ${seed} (${mutation}): ${err instanceof Error ? err.stack : String(err)}`);
        }
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      }
      const ms = performance.now() - started;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < TIME_BOUND_MS, `base ${name}, seed ${seed} (${mutation}) took ${ms.toFixed(0)} ms`);
    }
  });
  // The mutations reach past the parser: many kinds of rejection, and some mutants still valid.
  assert.ok(codes.size >= 8, `rejection codes seen: ${[...codes.keys()].join(', ')}`);
  assert.ok(accepted > 0, 'some mutations leave a valid model');
  console.log(
    `accepted ${accepted}, slowest ${slowest.toFixed(1)} ms, codes ${JSON.stringify(Object.fromEntries(codes))}`,
  );
});

function lengthDelimited(field: number, body: Uint8Array): Uint8Array {
  const length: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    length.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  length.push(n);
  return Buffer.concat([Uint8Array.from([(field << 3) | 2]), Uint8Array.from(length), body]);
}

test('hostile shapes: types nested 20,000 deep, 3,000 If nodes in one graph; refused or passed in time', () => {
  // TypeProto.sequence_type → Sequence.elem_type → TypeProto ..., as a graph input's type.
  let type: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 20_000; i++) type = lengthDelimited(4, lengthDelimited(1, type));
  const input = Buffer.concat([lengthDelimited(1, new TextEncoder().encode('x')), lengthDelimited(2, type)]);
  const header = encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }] });
  const deep = Buffer.concat([header, lengthDelimited(7, lengthDelimited(11, input))]);
  let started = performance.now();
  assert.throws(() => validateModel(deep), { code: 'not-protobuf' });
  assert.ok(performance.now() - started < TIME_BOUND_MS);

  // Each If's branches read outer names: scope lookups must not copy the outer names per subgraph (that made
  // this take seconds at 5,000, and would hang at 50,000). The bound is loose: the machine may be busy.
  const branch = (i: number, side: string) => ({
    name: `${side}${i}`,
    node: [makeNode('Identity', ['x'], [`${side}_out${i}`])],
    output: [tensorValueInfo(`${side}_out${i}`, FLOAT, ['n', 3])],
  });
  const ifs = Array.from({ length: 3000 }, (_, i) =>
    makeNode('If', ['cond'], [`y${i}`], {
      name: `if_${i}`,
      attributes: [attr.graph('then_branch', branch(i, 'then')), attr.graph('else_branch', branch(i, 'else'))],
    }),
  );
  const wide = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'wide',
      node: ifs,
      input: [tensorValueInfo('x', FLOAT, ['n', 3]), tensorValueInfo('cond', TensorDataType.BOOL, [])],
      output: [tensorValueInfo('y2999', FLOAT, ['n', 3])],
    },
  });
  started = performance.now();
  validateModel(wide);
  assert.ok(performance.now() - started < TIME_BOUND_MS * 5, `3,000 Ifs took ${performance.now() - started} ms`);
});
