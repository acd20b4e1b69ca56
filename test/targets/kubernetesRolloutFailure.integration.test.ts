/**
 * A rollout on the dev stack's real cluster that cannot succeed: the pipeline pushes its image through
 * a name of the stack's registry (localhost:<port>) that the node has no credentials for, so the kubelet
 * cannot pull it. The deploy stage must fail, not retry or hang, with the pod's own reason
 * (ErrImagePull / ImagePullBackOff); and nothing of the deployment is left in the cluster.
 *
 *   node --import tsx --test test/targets/kubernetesRolloutFailure.integration.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { workflowIds } from '../../workflows/types';
import { type FerryHarness, startHarness } from '../helpers/ferryHarness';
import { stackCluster, type TestCluster } from '../helpers/kubernetesCluster';

let cluster: TestCluster;
let h: FerryHarness;
let namespace: string;
before(async () => {
  cluster = stackCluster();
  // The same registry under another name: the worker pushes and smoke-tests through it; the node has no login for it.
  process.env.FERRY_REGISTRY_URL = `http://localhost:${new URL(loadConfig().registry.url).port}`;
  h = await startHarness('k8sfail');
  namespace = `ferry-it-${h.runId}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  await cluster.createNamespace(namespace);
  await h.startWorker();
});
after(async () => {
  await h?.close();
  if (namespace) await cluster?.deleteNamespace(namespace);
});

test('an image the node cannot pull fails the deploy stage with the pod reason; no stuck workflow, nothing left', {
  timeout: 420_000,
}, async () => {
  const name = `k8sfail-${h.runId}`;
  const file = await h.writeModel(name, { inputDim: 16, hiddenDims: [32], outputDim: 4, seed: 9 });
  const started = await h.ferry.deploy(file, { model: name, target: { kind: 'kubernetes', namespace } });
  const t0 = performance.now();
  await assert.rejects(h.ferry.waitForResult(started.deploymentId), (err: Error) => {
    console.log(`# ${err.message}`);
    assert.match(err.message, /ErrImagePull|ImagePullBackOff/, err.message);
    assert.match(err.message, /pod ferry-/, 'names the pod');
    return true;
  });
  console.log(`# failed rollout reported ${Math.round(performance.now() - t0)} ms after the deploy started`);

  // The run is over (failed), not retrying the activity: no stuck workflow.
  const desc = await h.ferry.temporal.workflow.getHandle(started.workflowId).describe();
  assert.equal(desc.status.name, 'FAILED');
  const status = await h.ferry.status(started.deploymentId);
  assert.equal(status.phase, 'failed');
  assert.equal(status.stages.find((s) => s.stage === 'deploy')?.state, 'failed');
  // No monitor was started for a deployment that never went live.
  const monitors = [];
  for await (const wf of h.ferry.temporal.workflow.list({
    query: `WorkflowId = '${workflowIds.monitor(name, status.version)}'`,
  }))
    monitors.push(wf.status.name);
  assert.deepEqual(monitors, []);

  assert.deepEqual(await cluster.leftovers(namespace, started.deploymentId), [], 'nothing of the deployment left');
});
