/**
 * One-click deploy of a generated model end to end on the real stack, then an inference through the
 * endpoint compared with onnxruntime run directly; deploying the same version again runs nothing new.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { SMOKE_AGREEMENT, type SmokeTestRecord } from '../../lib/image/smokeTest';
import { hostArchitecture } from '../../lib/oci/image';
import { getManifest } from '../../lib/oci/registry';
import { seededRandom } from '../../lib/optimize/sampleInputs';
import { type FerryHarness, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
before(async () => {
  h = await startHarness('oneclick');
  await h.startWorker();
});
after(async () => h?.close());

test('one-click deploy serves outputs equal to onnxruntime on the same input; a duplicate deploy runs nothing', async () => {
  const name = `oc-${h.runId}`;
  const file = await h.writeModel(name, { inputDim: 48, hiddenDims: [96, 64], outputDim: 10, seed: 3 });

  const started = await h.ferry.deploy(file, { model: name });
  assert.equal(started.alreadyExisted, false);
  const status = await h.ferry.waitForResult(started.deploymentId);

  assert.equal(status.phase, 'live');
  assert.deepEqual(
    status.stages.map((s) => s.state),
    ['done', 'done', 'done', 'done', 'done'],
  );
  assert.equal(status.chosenPlan?.source, 'one-click');
  assert.equal(status.chosenPlan?.plan, status.defaultPlan);
  assert.equal(status.summary?.parameterCount, 48 * 96 + 96 + 96 * 64 + 64 + 64 * 10 + 10);
  // One-click takes the best measured candidate within the accuracy budget.
  const table = status.optimization!;
  const chosen = table.candidates.find((c) => c.id === status.chosenPlan?.plan)!;
  assert.equal(chosen.id, table.best);
  assert.ok(chosen.withinBudget && chosen.row, 'the chosen candidate is measured and within the budget');
  assert.ok(chosen.row.agreement.cosine >= table.budget.minCosine, `cosine ${chosen.row.agreement.cosine}`);
  assert.equal(status.benchmark?.plan, chosen.id);
  assert.equal(status.benchmark?.maxAbsDiff, chosen.row.agreement.maxAbsError);
  assert.match(status.image?.digest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.ok(status.inferUrl?.startsWith(h.config.gateway.url), status.inferUrl);

  // The pushed image is really in the registry under its digest.
  const manifest = await getManifest(h.config.registry.url, status.image!.repository, status.image!.digest);
  assert.ok(manifest.layers.length >= 2, 'runtime layer and model layer');

  // Inference through the endpoint equals onnxruntime's own output, on the same input, of the model the image
  // serves (the chosen candidate, fetched from the object store, with its session options); and it stays within
  // the candidate's measured error of the original model.
  const rand = seededRandom(11);
  const data = Array.from({ length: 2 * 48 }, () => rand() * 2 - 1);
  const answer = await h.ferry.infer(started.deploymentId, {
    inputs: [{ name: 'input', shape: [2, 48], datatype: 'FP32', data }],
  });
  const feeds = { input: new ort.Tensor('float32', Float32Array.from(data), [2, 48]) };
  const served = await ort.InferenceSession.create(
    await h.ferry.store.getBytes(chosen.artifact!.objectKey),
    chosen.sessionOptions ?? {},
  );
  const expected = Array.from((await served.run(feeds)).output.data as Float32Array);
  const original = Array.from((await (await ort.InferenceSession.create(file)).run(feeds)).output.data as Float32Array);
  const got = answer.outputs.find((o) => o.name === 'output')!;
  assert.deepEqual(got.shape, [2, 10]);
  assert.equal(got.data.length, expected.length);
  for (const [i, v] of got.data.entries()) {
    assert.ok(Math.abs((v as number) - expected[i]) < 1e-5, `output[${i}] ${v} vs ${expected[i]}`);
  }
  const drift = Math.max(...got.data.map((v, i) => Math.abs((v as number) - original[i])));
  assert.ok(drift <= Math.max(1e-4, 4 * chosen.row.agreement.maxAbsError), `drift from the original ${drift}`);

  // The replica serves it as the optimize stage decided: its session options, and dynamic batching (an MLP's
  // rows are independent and batch 16 pays), read back from the server's config endpoint through the gateway.
  assert.ok(chosen.batching, `the engine should batch an MLP: ${chosen.notes.join('; ')}`);
  const servedConfig = (await (
    await fetch(status.inferUrl!.replace(/\/infer$/, '/config'), { headers: h.adminAuth })
  ).json()) as {
    batching: unknown;
    sessionOptions: unknown;
  };
  assert.deepEqual(servedConfig.batching, chosen.batching);
  assert.deepEqual(servedConfig.sessionOptions, chosen.sessionOptions ?? {});

  // Postgres has the version, exactly one image, and the running deployment.
  const repo = new FerryRepository(getPool(h.config.postgres.url));
  const mv = await repo.findModelVersion(name, status.version);
  assert.ok(mv);
  assert.equal(await repo.countImages(mv.id), 1);
  assert.equal((await repo.getDeployment(started.deploymentId))?.state, 'running');

  // The image was recorded as good only after its smoke test: run under the container runtime, one
  // inference that agreed with onnxruntime's own output; and the tag names it.
  const { rows } = await getPool(h.config.postgres.url).query(
    'SELECT tag, digest, smoke_test FROM images WHERE model_version_id = $1',
    [mv.id],
  );
  const smoke = rows[0].smoke_test as SmokeTestRecord;
  assert.equal(rows[0].digest, status.image!.digest);
  assert.ok(['youki', 'runc'].includes(smoke.runtime), `ran under ${smoke.runtime}`);
  assert.equal(smoke.platform, `linux/${hostArchitecture()}`);
  assert.equal(smoke.model, name);
  assert.ok(smoke.agreement.cosine >= SMOKE_AGREEMENT.minCosine, JSON.stringify(smoke.agreement));
  assert.equal(smoke.agreement.top1, 1);
  const tagged = await getManifest(h.config.registry.url, status.image!.repository, rows[0].tag);
  assert.equal(tagged.config.digest, manifest.config.digest, 'the tag names the smoke-tested image');

  // Same file again: the same version, recognised, nothing new started.
  const again = await h.ferry.deploy(file, { model: name });
  assert.equal(again.alreadyExisted, true);
  assert.equal(again.workflowId, started.workflowId);
  const runs = [];
  for await (const wf of h.ferry.temporal.workflow.list({ query: `WorkflowId = '${started.workflowId}'` }))
    runs.push(wf.runId);
  assert.equal(runs.length, 1, 'one run of the deploy workflow');
  assert.equal(await repo.countImages(mv.id), 1);

  await h.ferry.undeploy(started.deploymentId);
  assert.equal((await h.gatewayStatus(started.deploymentId)).status, 404);
  assert.equal((await repo.getDeployment(started.deploymentId))?.state, 'undeployed');
});
