/** The dependency report: operators by domain, non-standard domains, and the oldest onnxruntime for the opsets. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeNode } from '../../lib/onnx/builders';
import { buildMlpModel } from '../../lib/onnx/generate';
import { encodeModel } from '../../lib/onnx/model';
import { validateModel } from '../../lib/onnx/validate';
import { BUNDLED_ONNXRUNTIME, minimumRuntime } from '../../lib/onnx/validate/dependencies';

test('operators are counted per domain, contrib domains reported, the oldest runtime found from opset and IR', () => {
  const model = buildMlpModel({ inputDim: 3, hiddenDims: [4], outputDim: 2, opset: 13 });
  model.ir_version = 7;
  model.opset_import!.push({ domain: 'com.microsoft', version: 1 });
  model.graph!.node!.push(makeNode('FusedGelu', ['output'], ['gelu'], { name: 'gelu', domain: 'com.microsoft' }));
  const { dependencies: d } = validateModel(encodeModel(model));
  assert.deepEqual(d.operators['ai.onnx'], { MatMul: 2, Add: 2, Relu: 1 });
  assert.deepEqual(d.operators['com.microsoft'], { FusedGelu: 1 });
  assert.deepEqual(d.nonStandardDomains, ['com.microsoft']);
  assert.deepEqual(d.minimumRuntime, { version: '1.6.0', upperBound: false });
  assert.equal(d.bundledRuntime, BUNDLED_ONNXRUNTIME);
  assert.deepEqual(d.dynamicDims, ['batch']);
});

test('minimum runtime: each bound moves it; past the published rows only the bundled release is known to work', () => {
  assert.deepEqual(minimumRuntime(9, 0, 3), { version: '0.3.0', upperBound: false });
  assert.deepEqual(minimumRuntime(9, 0, 5), { version: '0.4.0', upperBound: false });
  assert.deepEqual(minimumRuntime(11, 2, 6), { version: '1.0.0', upperBound: false });
  assert.deepEqual(minimumRuntime(15, 0, 7), { version: '1.9.0', upperBound: false });
  assert.deepEqual(minimumRuntime(17, 0, 8), { version: BUNDLED_ONNXRUNTIME, upperBound: true });
});
