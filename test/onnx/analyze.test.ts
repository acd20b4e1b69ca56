import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeModel } from '../../lib/onnx/analyze';
import { attr, constantNode, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { buildMlpModel } from '../../lib/onnx/generate';
import { decodeModel, encodeModel, float32Tensor, type OnnxModel, TensorDataType } from '../../lib/onnx/model';
import { float32Input, runModel } from './ortSession';

const FLOAT = TensorDataType.FLOAT;

test('analysis of a known MLP: exact parameters, histogram, MACs, I/O and dynamic dims', () => {
  // 10→20→5: (10·20 + 20) + (20·5 + 5) = 325 parameters; MACs 10·20 + 20·5 = 300 per item.
  const a = analyzeModel(decodeModel(encodeModel(buildMlpModel({ inputDim: 10, hiddenDims: [20], outputDim: 5 }))));
  assert.equal(a.parameterCount, 325);
  assert.equal(a.weightBytes, 325 * 4);
  assert.deepEqual(a.opHistogram, { MatMul: 2, Add: 2, Relu: 1 });
  assert.equal(a.nodeCount, 5);
  assert.equal(a.macsEstimate, 300);
  assert.equal(a.macsUncountedNodes, 0);
  assert.deepEqual(a.inputs, [{ name: 'input', dataType: 'FP32', shape: ['batch', 10] }]);
  assert.deepEqual(a.outputs, [{ name: 'output', dataType: 'FP32', shape: ['batch', 5] }]);
  assert.deepEqual(a.dynamicDims, ['batch']);
  assert.equal(a.hasBatchDim, true);
  assert.deepEqual(a.opsets, [{ domain: 'ai.onnx', version: 17 }]);
  assert.equal(a.irVersion, 8);
  assert.deepEqual(a.producer, { name: 'ferry', version: '0.1.0' });
  assert.deepEqual(a.customDomains, []);
  assert.deepEqual(a.externalDataFiles, []);
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(a)));
  assert.deepEqual(JSON.parse(JSON.stringify(a)), a, 'analysis must survive JSON unchanged');
});

test('weights stored in Constant nodes are counted like initializers', () => {
  const spec = { inputDim: 10, hiddenDims: [20], outputDim: 5 };
  const a = analyzeModel(buildMlpModel({ ...spec, weightsIn: 'constants' }));
  assert.equal(a.parameterCount, 325);
  assert.equal(a.weightBytes, 1300);
  assert.equal(a.opHistogram.Constant, 4);
  assert.equal(a.macsEstimate, 300, 'Constant weights give MatMul its shapes too');
});

test('a weight shared by several nodes is counted once', async () => {
  // y = (x·W)·W with one 6×6 W: 36 parameters, not 72; two MatMuls of 6·6 MACs each.
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'shared',
      node: [
        makeNode('MatMul', ['x', 'W'], ['h'], { name: 'first' }),
        makeNode('MatMul', ['h', 'W'], ['y'], { name: 'second' }),
      ],
      initializer: [
        float32Tensor(
          'W',
          [6, 6],
          Array.from({ length: 36 }, (_, i) => (i % 7) / 10),
        ),
      ],
      input: [tensorValueInfo('x', FLOAT, ['n', 6])],
      output: [tensorValueInfo('y', FLOAT, ['n', 6])],
    },
  };
  const a = analyzeModel(model);
  assert.equal(a.parameterCount, 36);
  assert.equal(a.weightBytes, 144);
  assert.equal(a.macsEstimate, 72);
  const r = await runModel(encodeModel(model), { x: float32Input(new Float32Array(6).fill(1), [1, 6]) });
  assert.equal(r.y.dims[1], 6, 'the shared-weight model is a real, runnable model');
});

test('histogram and parameters include nested If subgraphs; custom domains and old-style inputs are reported', () => {
  const thenBranch = {
    name: 'then',
    node: [
      constantNode('k', float32Tensor('k', [3], [1, 2, 3])),
      makeNode('Mul', ['x', 'k'], ['t_out'], { name: 'then_mul' }),
    ],
    output: [tensorValueInfo('t_out', FLOAT, [3])],
  };
  const elseBranch = {
    name: 'else',
    node: [makeNode('Neg', ['x'], ['e_out'], { name: 'else_neg' })],
    output: [tensorValueInfo('e_out', FLOAT, [3])],
  };
  const model: OnnxModel = {
    ir_version: 3,
    opset_import: [
      { domain: '', version: 11 },
      { domain: 'my.ops', version: 1 },
    ],
    graph: {
      name: 'nested',
      node: [
        makeNode('If', ['cond'], ['y'], {
          name: 'branch',
          attributes: [attr.graph('then_branch', thenBranch), attr.graph('else_branch', elseBranch)],
        }),
        makeNode('Fancy', ['y'], ['z'], { name: 'custom', domain: 'my.ops' }),
      ],
      initializer: [float32Tensor('unused_bias', [2], [0, 0])],
      // IR 3 style: the initializer is also listed as an input; it is a weight, not a request input.
      input: [
        tensorValueInfo('cond', TensorDataType.BOOL, []),
        tensorValueInfo('x', FLOAT, [3]),
        tensorValueInfo('unused_bias', FLOAT, [2]),
      ],
      output: [tensorValueInfo('z', FLOAT, [null])],
    },
  };
  const a = analyzeModel(model);
  assert.deepEqual(a.opHistogram, { If: 1, 'my.ops.Fancy': 1, Constant: 1, Mul: 1, Neg: 1 });
  assert.equal(a.nodeCount, 5);
  assert.equal(a.parameterCount, 5); // 2 (initializer) + 3 (Constant inside the then-branch)
  assert.deepEqual(a.customDomains, ['my.ops']);
  assert.deepEqual(
    a.inputs.map((i) => i.name),
    ['cond', 'x'],
  );
  assert.deepEqual(a.inputs[0], { name: 'cond', dataType: 'BOOL', shape: [] });
  assert.deepEqual(a.dynamicDims, ['z[0]']);
  assert.equal(a.hasBatchDim, false, 'a scalar input has no batch dim');
});

test('Conv and Gemm MACs come from propagated shapes (and onnxruntime agrees on those shapes)', async () => {
  // Conv: 1×3×32×32 input, 8×3×3×3 kernel, pad 1 → 1×8×32×32 output; MACs = 8·32·32 · 3·3·3 = 221,184.
  // Flatten → 1×8192; Gemm with B 10×8192 (transB) → 8192·10 = 81,920 MACs.
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'cnn',
      node: [
        makeNode('Conv', ['img', 'k'], ['c'], {
          name: 'conv',
          attributes: [attr.ints('pads', [1, 1, 1, 1]), attr.ints('kernel_shape', [3, 3])],
        }),
        makeNode('Relu', ['c'], ['r']),
        makeNode('Flatten', ['r'], ['f'], { attributes: [attr.int('axis', 1)] }),
        makeNode('Gemm', ['f', 'fc', 'fc_b'], ['logits'], { attributes: [attr.int('transB', 1)] }),
      ],
      initializer: [
        float32Tensor('k', [8, 3, 3, 3], new Float32Array(216)),
        float32Tensor('fc', [10, 8192], new Float32Array(81920)),
        float32Tensor('fc_b', [10], new Float32Array(10)),
      ],
      input: [tensorValueInfo('img', FLOAT, ['N', 3, 32, 32])],
      output: [tensorValueInfo('logits', FLOAT, ['N', 10])],
    },
  };
  const a = analyzeModel(model);
  assert.equal(a.macsEstimate, 221_184 + 81_920);
  assert.equal(a.macsUncountedNodes, 0);
  assert.equal(a.parameterCount, 216 + 81920 + 10);
  assert.deepEqual(a.dynamicDims, ['N']);
  const r = await runModel(encodeModel(model), {
    img: float32Input(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]),
  });
  assert.deepEqual(r.logits.dims, [2, 10], 'the Gemm accepted an 8192-wide input, so the Conv output was 8×32×32');
});

test('a MatMul whose operand shapes are unknown is reported as uncounted, not guessed', () => {
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'opaque',
      node: [makeNode('Custom', ['x'], ['h'], { domain: 'vendor' }), makeNode('MatMul', ['h', 'W'], ['y'])],
      initializer: [float32Tensor('W', [4, 4], new Float32Array(16))],
      input: [tensorValueInfo('x', FLOAT, ['n', 4])],
      output: [tensorValueInfo('y', FLOAT, ['n', 4])],
    },
  };
  const a = analyzeModel(model);
  assert.equal(a.macsEstimate, 0);
  assert.equal(a.macsUncountedNodes, 1);
});
