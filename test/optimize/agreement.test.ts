/**
 * The one definition of output agreement (lib/optimize/agreement.ts): the engine's table (outputs over the
 * measuring child's wire), the techniques' checks (onnxruntime tensors) and the row-independence check all
 * read the same figures off the same outputs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { compareOutputRuns, compareOutputs, cosineSimilarity, ElementAgreement } from '../../lib/optimize/agreement';
import type { OutputsWire } from '../../lib/optimize/measureProtocol';
import { feedsToWire } from '../../lib/optimize/sampleInputs';
import type { Feeds } from '../../lib/optimize/technique';
import { agreementOf, type OrtOutputs } from '../../lib/optimize/techniques/modelAgreement';
import { compareOutputs as verifyOutputs } from '../../lib/optimize/techniques/verifyCandidate';

// Two outputs of very different scale: class scores [4, 3] and a large embedding [4, 8] that barely moves.
function outputs(drift: number): Feeds {
  const scores = Float32Array.from([1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 1, 0.5]);
  scores[9] -= drift;
  scores[10] += drift;
  const embedding = Float32Array.from({ length: 32 }, (_, i) => 100 + i);
  return {
    scores: { type: 'float32', dims: [4, 3], data: scores },
    embedding: { type: 'float32', dims: [4, 8], data: embedding },
  };
}
const toOrt = (f: Feeds): OrtOutputs =>
  Object.fromEntries(Object.entries(f).map(([n, t]) => [n, new ort.Tensor(t.type, t.data as Float32Array, t.dims)]));
const toWire = (f: Feeds): OutputsWire => ({ runs: [feedsToWire(f)], skipped: [] });

test('the engine, the techniques and verifyCandidate report the same figures for the same outputs', () => {
  const ref = outputs(0);
  const cand = outputs(0.2);
  const engine = compareOutputs(toWire(ref), toWire(cand), 4).figures;
  const technique = agreementOf([toOrt(ref)], [toOrt(cand)]);
  const verify = verifyOutputs(toOrt(ref), toOrt(cand));
  assert.equal(technique.cosine, engine.cosine);
  assert.equal(technique.maxAbsError, engine.maxAbsError);
  assert.equal(technique.top1, engine.top1);
  assert.equal(technique.rows, 4);
  assert.deepEqual([verify.cosine, verify.maxAbsError], [engine.cosine, engine.maxAbsError]);
});

test('the worst output counts: a drifting small output is not hidden behind a large steady one', () => {
  const ref = outputs(0);
  const cand = outputs(0.5);
  const c = compareOutputRuns([ref], [cand]);
  const scoresAlone = cosineSimilarity(ref.scores!.data as Float32Array, cand.scores!.data as Float32Array);
  assert.equal(c.cosine, scoresAlone);
  const pooled = cosineSimilarity(
    [...(ref.scores!.data as Float32Array), ...(ref.embedding!.data as Float32Array)],
    [...(cand.scores!.data as Float32Array), ...(cand.embedding!.data as Float32Array)],
  );
  assert.ok(pooled > c.cosine, `pooled ${pooled} would hide the drift (${c.cosine})`);
  assert.equal(c.top1, 0.75); // row 4's arg-max moves from class 0 to class 1
  assert.deepEqual(c.outputs, ['scores', 'embedding']);
});

test('cosine conventions, NaN and shape changes', () => {
  assert.equal(cosineSimilarity([0, 0], [0, 0]), 1);
  assert.equal(cosineSimilarity([0, 0], [1, 0]), 0);
  // x against 3x computes to 1.0000000000000002 in float64; a similarity is never above 1.
  const x = [0.1, 0.7, 0.3];
  assert.equal(
    cosineSimilarity(
      x,
      x.map((v) => 3 * v),
    ),
    1,
  );
  const e = new ElementAgreement();
  assert.equal(e.add([1, 2, 3], [1, Number.NaN, 3]), true);
  e.add([4], [4]);
  assert.ok(Number.isNaN(e.maxAbsError), 'NaN stays once seen');
  const ref = outputs(0);
  const other = { ...outputs(0), scores: { type: 'float32' as const, dims: [3, 4], data: new Float32Array(12) } };
  const c = compareOutputRuns([ref], [other]);
  assert.match(c.mismatch!, /output "scores" has shape \[3, 4\], the original's is \[4, 3\]/);
  assert.throws(() => agreementOf([toOrt(ref)], [toOrt(other)]), /has shape/);
  const { embedding: _dropped, ...onlyScores } = outputs(0);
  assert.throws(() => agreementOf([toOrt(ref)], [toOrt(onlyScores)]), /has no output "embedding"/);
});
