/**
 * The optimize stage's errors that no retry can fix are OptimizationNotPossibleError with a code, thrown
 * where they arise and kept across the engine's child process, so the activity branches on the class.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { corruptModelBytes } from '../../lib/onnx/corruptModels';
import { generateMlpModel } from '../../lib/onnx/generate';
import { parseBudget, resolveBudget } from '../../lib/optimize/budget';
import { resolveTarget, runOptimizationEngine } from '../../lib/optimize/engine';
import { runOptimizationEngineInChild } from '../../lib/optimize/engineProcess';
import { type OptimizationNotPossibleCode, OptimizationNotPossibleError } from '../../lib/optimize/errors';

const notPossible = (code: OptimizationNotPossibleCode, message: RegExp) => (err: unknown) => {
  assert.ok(err instanceof OptimizationNotPossibleError, `${err} is not an OptimizationNotPossibleError`);
  assert.equal(err.code, code);
  assert.match(err.message, message);
  return true;
};

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-optimize-errors-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('bad settings: target threads, the accuracy budget, an unknown technique', async () => {
  assert.throws(() => resolveTarget({ threads: 0 }), notPossible('invalid-target', /target threads/));
  assert.throws(() => parseBudget('speed=2'), notPossible('invalid-budget', /known keys/));
  assert.throws(() => resolveBudget({ minTop1: 2 }), notPossible('invalid-budget', /at most 1/));
  const model = generateMlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 1 });
  await assert.rejects(
    runOptimizationEngine({ model, workDir: path.join(dir, 'unknown'), techniques: ['int3-magic'] }),
    notPossible('unknown-technique', /unknown technique "int3-magic"/),
  );
});

test('a model onnxruntime cannot load is not measurable; the code crosses the engine child process', async () => {
  const model = corruptModelBytes('dangling-input');
  await assert.rejects(
    runOptimizationEngine({ model, workDir: path.join(dir, 'in-process'), techniques: [], measure: { measureMs: 50 } }),
    notPossible('model-not-measurable', /does not load in onnxruntime/),
  );
  const modelPath = path.join(dir, 'dangling.onnx');
  await writeFile(modelPath, model);
  await assert.rejects(
    runOptimizationEngineInChild(modelPath, {
      workDir: path.join(dir, 'child'),
      techniques: [],
      measure: { measureMs: 50 },
    }),
    notPossible('model-not-measurable', /does not load in onnxruntime/),
  );
  // Anything else stays a plain Error: the activity retries it.
  await assert.rejects(
    runOptimizationEngineInChild(path.join(dir, 'missing.onnx'), { workDir: path.join(dir, 'missing') }),
    (err: unknown) => err instanceof Error && !(err instanceof OptimizationNotPossibleError),
  );
});
