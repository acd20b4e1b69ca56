/**
 * The engine inside the deployment workflow, on the real stack: review mode puts the measured table into
 * the status Query, the approval Update refuses a candidate the accuracy budget rejected (with the reason),
 * the approved candidate's model AND its session options end up in the pushed image's ferry-models.json,
 * and the table and the choice are stored in Postgres.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { pullImage } from '../../lib/oci/pull';
import { loadOptimizationResults } from '../../lib/optimize/results';
import { techniques } from '../../lib/optimize/techniques';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
before(async () => {
  h = await startHarness('optwf');
  await h.startWorker();
});
after(async () => h?.close());

test('review: table in the status Query, budget-rejected plan refused, chosen model + session options in the image, results in Postgres', async () => {
  const name = `optwf-${h.runId}`;
  const file = await h.writeModel(name, { inputDim: 64, hiddenDims: [256, 128], outputDim: 8, seed: 21 });
  const wanted = ['graph-optimize', 'session-tuning', 'int8-dynamic'].filter((id) =>
    techniques.some((t) => t.id === id),
  );
  const started = await h.ferry.deploy(file, {
    model: name,
    mode: 'review',
    approvalTimeoutMs: 10 * 60_000,
    // A max-abs budget that fusion meets and 8-bit weights do not.
    optimize: { techniques: wanted, budget: { maxAbsError: 1e-4 }, measureMs: 150 },
  });
  const waiting = await eventually(
    'awaiting approval',
    async () => {
      const s = await h.ferry.status(started.deploymentId);
      return s.phase === 'awaiting-approval' ? s : undefined;
    },
    240_000,
  );

  const table = waiting.optimization!;
  assert.equal(table.budget.maxAbsError, 1e-4);
  assert.deepEqual(
    new Set(table.candidates.flatMap((c) => c.techniques)),
    new Set(wanted.filter((id) => table.candidates.some((c) => c.techniques.includes(id)))),
  );
  assert.deepEqual(
    waiting.plans!.map((p) => p.id),
    table.candidates.filter((c) => c.state === 'measured').map((c) => c.id),
  );
  for (const c of table.candidates.filter((x) => x.state === 'measured'))
    assert.match(c.artifact?.objectKey ?? '', /^models\/sha256\/[0-9a-f]{64}\.onnx$/, c.id);

  const int8 = table.candidates.find((c) => c.id === 'int8-dynamic');
  if (int8?.state === 'measured') {
    assert.equal(int8.withinBudget, false);
    await assert.rejects(
      h.ferry.approve(started.deploymentId, 'int8-dynamic'),
      /plan "int8-dynamic" is outside the accuracy budget: .*max abs error .* > 0.0001/,
    );
  }
  await assert.rejects(
    h.ferry.approve(started.deploymentId, 'no-such-candidate'),
    /unknown plan "no-such-candidate"; choose one of: original/,
  );

  // Approve the candidate with tuned session options when there is one, else the best.
  const pick =
    table.candidates.find((c) => c.withinBudget && c.techniques.includes('session-tuning')) ??
    table.candidates.find((c) => c.id === table.best)!;
  await h.ferry.approve(started.deploymentId, pick.id, 'dana');
  const done = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(done.phase, 'live');
  assert.equal(done.chosenPlan?.plan, pick.id);
  assert.equal(done.benchmark?.plan, pick.id);

  // The image serves that candidate's model with its session options.
  const pulled = await pullImage(
    { registry: h.config.registry.url, repository: done.image!.repository, reference: done.image!.digest },
    path.join(h.tmpDir, 'pulled'),
  );
  const index = JSON.parse(await readFile(path.join(pulled.rootfs, 'models', 'ferry-models.json'), 'utf8'));
  assert.deepEqual(index.models[0].sessionOptions, pick.sessionOptions);
  const served = await readFile(path.join(pulled.rootfs, 'models', index.models[0].path));
  assert.deepEqual(new Uint8Array(served), new Uint8Array(await h.ferry.store.getBytes(pick.artifact!.objectKey)));

  // Postgres: one row per candidate, the choice marked, the whole table kept.
  const pool = getPool(h.config.postgres.url);
  const mv = await new FerryRepository(pool).findModelVersion(name, done.version);
  const rows = await loadOptimizationResults(pool, mv!.id);
  assert.deepEqual(
    rows.map((r) => r.plan),
    table.candidates.map((c) => c.id),
  );
  assert.deepEqual(
    rows.filter((r) => r.chosen).map((r) => r.plan),
    [pick.id],
  );
  const run = await pool.query(
    'SELECT best, chosen, chosen_source, chosen_by, result_table FROM optimization_runs WHERE model_version_id = $1',
    [mv!.id],
  );
  assert.deepEqual(
    [run.rows[0].best, run.rows[0].chosen, run.rows[0].chosen_source, run.rows[0].chosen_by],
    [table.best, pick.id, 'approved', 'dana'],
  );
  assert.equal(run.rows[0].result_table.candidates.length, table.candidates.length);

  await h.ferry.undeploy(started.deploymentId);
});
