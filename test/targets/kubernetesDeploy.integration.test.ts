/**
 * The kubernetes target on the dev stack's real cluster (`bash infra/stack.sh start kubernetes`): the
 * example model deployed one-click through the whole pipeline with `ferry deploy --target kubernetes`,
 * served by real pods of the image the pipeline built (pulled from the stack's registry), inferred
 * through Ferry's gateway with onnxruntime's own answer. Left idle, the monitor scales it to zero (no
 * pod left); the next request through the gateway is held while the gateway scales the Deployment up
 * and is answered (the wake time is printed), and the deployment then stays up while it is in use.
 * Undeployed, nothing of it is left in the cluster.
 *
 *   node --import tsx --test test/targets/kubernetesDeploy.integration.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { exampleModelSpec } from '../../lib/onnx/generate';
import { seededRandom } from '../../lib/optimize/sampleInputs';
import { pullReference } from '../../lib/targets/kubernetes/manifests';
import { deploymentSelector } from '../../lib/targets/kubernetes/objectNames';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';
import { stackCluster, type TestCluster } from '../helpers/kubernetesCluster';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');
/** The demo's example model (MNIST-shaped MLP), smaller than the demo's 10 MB to keep the optimize stage short. */
const MODEL = { ...exampleModelSpec(2), seed: 7 };
/** The monitor's idle time before it scales the deployment to zero, and its interval. */
const IDLE_HIBERNATE = '20s';
const MONITOR_INTERVAL_MS = 1000;

let cluster: TestCluster;
let h: FerryHarness;
let namespace: string;
before(async () => {
  cluster = stackCluster();
  h = await startHarness('k8sdeploy');
  namespace = `ferry-it-${h.runId}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  await cluster.createNamespace(namespace);
  await h.startWorker();
});
after(async () => {
  await h?.close();
  if (namespace) await cluster?.deleteNamespace(namespace);
});

/** An input for the model and onnxruntime's own output for it, from the model file the image serves. */
async function expectedOutput(modelBytes: Uint8Array, sessionOptions: ort.InferenceSession.SessionOptions) {
  const rand = seededRandom(5);
  const data = Array.from({ length: 2 * MODEL.inputDim }, () => rand() * 2 - 1);
  const session = await ort.InferenceSession.create(modelBytes, sessionOptions);
  const feeds = { input: new ort.Tensor('float32', Float32Array.from(data), [2, MODEL.inputDim]) };
  const expected = Array.from((await session.run(feeds)).output.data as Float32Array);
  return { request: { inputs: [{ name: 'input', shape: [2, MODEL.inputDim], datatype: 'FP32', data }] }, expected };
}

function assertClose(got: unknown[], expected: number[], what: string) {
  assert.equal(got.length, expected.length, what);
  for (const [i, v] of got.entries())
    assert.ok(Math.abs((v as number) - expected[i]) < 1e-5, `${what}: output[${i}] ${v} vs ${expected[i]}`);
}

test('ferry deploy --target kubernetes: pods of the built image answer as onnxruntime does; idle → zero pods; a request wakes it; undeploy leaves nothing', {
  timeout: 450_000,
}, async () => {
  const name = `k8s-${h.runId}`;
  const file = await h.writeModel(name, MODEL);
  await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'client/cli/main.ts',
      'deploy',
      file,
      '--name',
      name,
      '--target',
      'kubernetes',
      '--namespace',
      namespace,
      '--idle-hibernate',
      IDLE_HIBERNATE,
      '--no-wait',
    ],
    { cwd: repoRoot, env: { ...h.env, FERRY_MONITOR_INTERVAL_MS: String(MONITOR_INTERVAL_MS) } },
  );
  const status = await h.ferry.waitForResult(name);
  assert.equal(status.phase, 'live', status.error);
  const id = status.deploymentId;
  assert.ok(status.inferUrl?.startsWith(`${h.config.gateway.url}/d/`), status.inferUrl);

  // One Deployment, running the image the pipeline built, pinned by its digest, and its pod is ready.
  const selector = deploymentSelector(id);
  const deployments = (await cluster.apps.listNamespacedDeployment({ namespace, labelSelector: selector })).items;
  assert.equal(deployments.length, 1, 'one Deployment per revision');
  const image = status.image!;
  const container = deployments[0].spec!.template.spec!.containers[0];
  assert.equal(
    container.image,
    pullReference({ registry: h.config.registry.url, repository: image.repository, digest: image.digest }),
  );
  const pods = (await cluster.core.listNamespacedPod({ namespace, labelSelector: selector })).items;
  assert.equal(pods.length, 1);
  assert.equal(pods[0].status?.phase, 'Running');
  assert.match(pods[0].status?.containerStatuses?.[0]?.imageID ?? '', new RegExp(`${image.digest}$`));

  // Inference through the gateway equals onnxruntime on the model file the image serves.
  const chosen = status.optimization!.candidates.find((c) => c.id === status.chosenPlan?.plan)!;
  const { request, expected } = await expectedOutput(
    await h.ferry.store.getBytes(chosen.artifact!.objectKey),
    chosen.sessionOptions ?? {},
  );
  const answer = await h.ferry.infer(id, request);
  const got = answer.outputs.find((o) => o.name === 'output')!;
  assert.deepEqual(got.shape, [2, MODEL.outputDim]);
  assertClose(got.data, expected, 'served by the pod');

  const repo = new FerryRepository(getPool(h.config.postgres.url));
  assert.equal((await repo.getDeployment(id))?.state, 'running');

  // Idle: the monitor scales the Deployment to zero and its pod goes.
  const hibernated = await eventually(
    'the monitor to scale the idle deployment to zero',
    async () => {
      const m = await h.ferry.serving(id);
      return m && m.hibernations >= 1 ? m : undefined;
    },
    90_000,
    500,
  );
  assert.ok(hibernated.lastSample!.requestCount >= 1, 'the gateway reported the request it served');
  const [scaled] = (await cluster.apps.listNamespacedDeployment({ namespace, labelSelector: selector })).items;
  assert.equal(scaled.spec?.replicas, 0);
  assert.deepEqual((await cluster.core.listNamespacedPod({ namespace, labelSelector: selector })).items, []);

  // A request wakes it: held by the gateway while the Deployment scales 0 → 1, then answered by the new pod.
  const t0 = performance.now();
  const woken = await h.ferry.infer(id, request);
  const wakeMs = performance.now() - t0;
  console.log(`# wake from zero on kubernetes (request held until answered): ${Math.round(wakeMs)} ms`);
  assertClose(woken.outputs.find((o) => o.name === 'output')!.data, expected, 'served after the wake');
  const [awake] = (await cluster.core.listNamespacedPod({ namespace, labelSelector: selector })).items;
  assert.notEqual(awake.metadata?.name, pods[0].metadata?.name, 'a new pod');

  // In use, it stays up: the monitor's idle time counts from the gateway's last request, not from the deploy.
  for (let i = 0; i < 4; i++) {
    await h.ferry.infer(id, request);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const inUse = await h.ferry.serving(id);
  assert.equal(inUse?.hibernations, 1, 'not scaled to zero again while in use');
  assert.equal(inUse?.servingState, 'running');
  const { rows } = await getPool(h.config.postgres.url).query(
    'SELECT kind FROM deployment_events WHERE deployment_id = $1 ORDER BY id',
    [id],
  );
  const kinds = rows.map((r) => r.kind as string);
  assert.ok(kinds.lastIndexOf('woke') > kinds.indexOf('hibernated'), `events: ${kinds.join(', ')}`);

  await h.ferry.undeploy(id);
  await eventually(
    'the deployment to be undeployed',
    async () => (await repo.getDeployment(id))?.state === 'undeployed',
    120_000,
    500,
  );
  assert.deepEqual(await cluster.leftovers(namespace, id), [], 'nothing of the deployment left in the cluster');
});
