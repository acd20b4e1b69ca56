/** The bounds validateModel enforces must be exactly what the bundled onnxruntime accepts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildMlpModel } from '../../lib/onnx/generate';
import { encodeModel, type OperatorSetId } from '../../lib/onnx/model';
import { MAX_IR_VERSION, MAX_OPSET_BY_DOMAIN } from '../../lib/onnx/runtimeSupport';
import { validateModel } from '../../lib/onnx/validate';
import { ort } from './ortSession';

function probe(irVersion: number, opsets: OperatorSetId[]): Uint8Array {
  return encodeModel({
    ...buildMlpModel({ inputDim: 2, hiddenDims: [], outputDim: 2 }),
    ir_version: irVersion,
    opset_import: opsets,
  });
}

async function loads(bytes: Uint8Array): Promise<boolean> {
  try {
    await (await ort.InferenceSession.create(bytes)).release();
    return true;
  } catch {
    return false;
  }
}

test(`IR version ${MAX_IR_VERSION} is the newest onnxruntime loads, and validateModel draws the line there`, async () => {
  const newest = probe(MAX_IR_VERSION, [{ domain: '', version: 17 }]);
  const tooNew = probe(MAX_IR_VERSION + 1, [{ domain: '', version: 17 }]);
  assert.equal(await loads(newest), true);
  assert.equal(await loads(tooNew), false);
  validateModel(newest);
  assert.throws(() => validateModel(tooNew), { code: 'unsupported-ir-version' });
});

for (const [domain, max] of Object.entries(MAX_OPSET_BY_DOMAIN)) {
  test(`opset ${max} is the newest onnxruntime loads for domain ${domain}, and validateModel agrees`, async () => {
    const imports = (v: number): OperatorSetId[] =>
      domain === 'ai.onnx'
        ? [{ domain: '', version: v }]
        : [
            { domain: '', version: 17 },
            { domain, version: v },
          ];
    const newest = probe(MAX_IR_VERSION, imports(max));
    const tooNew = probe(MAX_IR_VERSION, imports(max + 1));
    assert.equal(await loads(newest), true);
    assert.equal(await loads(tooNew), false);
    validateModel(newest);
    assert.throws(() => validateModel(tooNew), { code: 'unsupported-opset' });
  });
}
