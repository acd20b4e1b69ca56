/**
 * A canary on the kubernetes target, on the dev stack's real cluster, under a steady load through the
 * gateway: version 2 deployed with `--canary 10` becomes a second revision (its own Deployment and pod)
 * with about a tenth of the requests; `promote` then gives it all of them and removes the first
 * revision's Deployment and pod. No request fails throughout; undeploy leaves nothing.
 *
 *   node --import tsx --test test/targets/kubernetesCanary.integration.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { authHeader } from '../../lib/auth/clientKey';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { deploymentSelector, LABELS } from '../../lib/targets/kubernetes/objectNames';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';
import { stackCluster, type TestCluster } from '../helpers/kubernetesCluster';

const MODEL = { inputDim: 16, hiddenDims: [32], outputDim: 4 };

let cluster: TestCluster;
let h: FerryHarness;
let namespace: string;
before(async () => {
  cluster = stackCluster();
  h = await startHarness('k8scanary');
  namespace = `ferry-it-${h.runId}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  await cluster.createNamespace(namespace);
  await h.startWorker();
});
after(async () => {
  await h?.close();
  if (namespace) await cluster?.deleteNamespace(namespace);
});

/** Requests one after another (two at a time) until stopped: each answer's status and revision. */
function loadLoop(url: string, headers: Record<string, string>) {
  const answers: Array<{ status: number; revision: string; at: number }> = [];
  let stopped = false;
  const body = JSON.stringify({
    inputs: [{ name: 'input', shape: [1, MODEL.inputDim], datatype: 'FP32', data: Array(MODEL.inputDim).fill(0.5) }],
  });
  const worker = async () => {
    while (!stopped) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      await res.arrayBuffer();
      answers.push({ status: res.status, revision: res.headers.get('x-ferry-revision') ?? '', at: Date.now() });
    }
  };
  const running = Promise.all([worker(), worker()]);
  return {
    answers,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

test('canary 10% on kubernetes, then promote: one Deployment per revision, no failed request', {
  timeout: 420_000,
}, async () => {
  const name = `k8scan-${h.runId}`;
  const target = { kind: 'kubernetes' as const, namespace };
  const v1 = await h.ferry.deploy(await h.writeModel(`${name}-1`, { ...MODEL, seed: 1 }), { model: name, target });
  const live = await h.ferry.waitForResult(v1.deploymentId);
  assert.equal(live.phase, 'live', live.error);
  const id = v1.deploymentId;
  const selector = deploymentSelector(id);
  const deployments = async () =>
    (await cluster.apps.listNamespacedDeployment({ namespace, labelSelector: selector })).items.map(
      (d) => d.metadata?.labels?.[LABELS.revision],
    );
  assert.deepEqual(await deployments(), ['default']);

  const load = loadLoop(live.inferUrl!, await authHeader(h.config));
  try {
    // Version 2 as a canary with 10%: a second Deployment, and about a tenth of the requests.
    const v2 = await h.ferry.deploy(await h.writeModel(`${name}-2`, { ...MODEL, seed: 2 }), {
      model: name,
      target,
      canary: { percent: 10 },
    });
    const canary = await h.ferry.waitForResult(v2.deploymentId);
    assert.equal(canary.phase, 'live', canary.error);
    const revision = canary.canary!.revision;
    assert.equal(canary.canary!.baseDeploymentId, id);
    assert.deepEqual((await deployments()).sort(), [revision, 'default'].sort());
    const since = Date.now();
    await eventually(
      '400 answers with the canary in the split',
      async () => {
        return load.answers.filter((a) => a.at > since).length >= 400;
      },
      120_000,
      200,
    );
    const split = load.answers.filter((a) => a.at > since);
    const share = split.filter((a) => a.revision === revision).length / split.length;
    console.log(`# canary share: ${(share * 100).toFixed(1)}% of ${split.length} requests`);
    assert.ok(share > 0.03 && share < 0.2, `canary share ${share}`);

    // Promote: all requests to the canary; the first revision's Deployment and its pod go.
    const promoted = await h.ferry.promote(id, revision);
    assert.deepEqual(promoted.removed, ['default']);
    const after = Date.now();
    await eventually(
      '100 answers after the promote',
      async () => {
        return load.answers.filter((a) => a.at > after).length >= 100;
      },
      60_000,
      200,
    );
    for (const a of load.answers.filter((x) => x.at > after)) assert.equal(a.revision, revision);
    assert.deepEqual(await deployments(), [revision], 'one Deployment: the promoted revision');
    await eventually(
      'the first revision pod to go',
      async () => {
        const pods = await cluster.core.listNamespacedPod({
          namespace,
          labelSelector: `${selector},${LABELS.revision}=default`,
        });
        return pods.items.length === 0;
      },
      60_000,
    );
  } finally {
    await load.stop();
  }
  const failed = load.answers.filter((a) => a.status !== 200);
  console.log(`# ${load.answers.length} requests during canary and promote, ${failed.length} failed`);
  assert.deepEqual(failed, [], 'no failed request');

  const repo = new FerryRepository(getPool(h.config.postgres.url));
  assert.equal((await repo.getDeployment(id))?.target, `kubernetes:${namespace}`);
  await h.ferry.undeploy(id);
  assert.deepEqual(await cluster.leftovers(namespace, id), [], 'nothing of the deployment left');
});
