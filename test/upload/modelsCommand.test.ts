/** `ferry models` and `ferry models show`: the listing, the version report, and model references. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeModels, describeModelVersion, parseModelRef } from '../../client/cli/models';
import { generateMlpModel } from '../../lib/onnx/generate';
import { validateModel } from '../../lib/onnx/validate';

test('model references: name, name:version; the last colon separates', () => {
  assert.deepEqual(parseModelRef('resnet'), { model: 'resnet' });
  assert.deepEqual(parseModelRef('resnet:v2'), { model: 'resnet', version: 'v2' });
  assert.deepEqual(parseModelRef('ns:resnet:v2'), { model: 'ns:resnet', version: 'v2' });
  assert.deepEqual(parseModelRef('resnet:'), { model: 'resnet', version: undefined });
});

test('the listing gives each model its version count, newest version and sizes', () => {
  const lines = describeModels([
    {
      name: 'mlp',
      versions: [
        { version: 'v2', sizeBytes: 2048, sha256: 'b', createdAt: '2026-12-03T10:00:00.000Z' },
        { version: 'v1', sizeBytes: 1024, sha256: 'a', createdAt: '2026-12-02T10:00:00.000Z' },
      ],
    },
  ]);
  assert.match(lines[0], /^MODEL\s+VERSIONS\s+LATEST/);
  assert.match(lines[1], /^mlp\s+2\s+v2\s+2\.00 KiB\s+3\.00 KiB$/);
});

test('the version report shows the dependency report stored at upload, or says there is none', () => {
  const v = validateModel(generateMlpModel({ inputDim: 4, hiddenDims: [3], outputDim: 2 }));
  const row = {
    id: 1,
    model: 'mlp',
    version: 'v1',
    sha256: 'f'.repeat(64),
    sizeBytes: v.sizeBytes,
    objectKey: 'models/x',
    analysis: v.analysis,
    dependencies: v.dependencies,
  };
  const text = describeModelVersion(row).join('\n');
  assert.match(text, /opsets {6}ai\.onnx 17/);
  assert.match(text, /onnxruntime minimum newer than the last published release row, at most 1\.30\.0/);
  assert.match(text, /ops ai\.onnx: Add×2, MatMul×2, Relu$/m);
  assert.match(text, /dynamic dims {2}batch/);
  assert.match(describeModelVersion({ ...row, dependencies: null }).join('\n'), /not recorded/);
});
