/**
 * The kubernetes target against the local one, in the same run, for the example model:
 *   - `ferry deploy` (one-click, the whole pipeline) → first answer through the gateway, with the deploy
 *     stage on its own (what the target adds: applying the objects, pulling the image, the pod starting);
 *   - wake from zero: the deployment hibernated (every pod gone, the image still on the node), then one
 *     request through the gateway, held while it scales 0 → 1, until answered.
 * The local target's figures are the baseline.
 *   bash infra/stack.sh start kubernetes && npx tsx bench/kubernetes-deploy.ts [--size-mb 10] [--wakes 3]
 */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { clientApiKey } from '../lib/auth/clientKey';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import type { DeploymentTarget } from '../lib/targets/deploymentTarget';
import { ClusterClient, loadKubeConfig } from '../lib/targets/kubernetes/clusterClient';
import { KubernetesTarget } from '../lib/targets/kubernetes/kubernetesTarget';
import { LocalTarget } from '../lib/targets/local';
import { type FerryHarness, startHarness } from '../test/helpers/ferryHarness';
import { stackCluster } from '../test/helpers/kubernetesCluster';
import type { DeploymentTargetChoice } from '../workflows/types';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Run {
  firstAnswerMs: number;
  deployStageMs: number;
  wakesMs: number[];
}

async function measure(
  h: FerryHarness,
  file: string,
  name: string,
  input: number[],
  choice: DeploymentTargetChoice | undefined,
  target: DeploymentTarget,
  wakes: number,
): Promise<Run> {
  const request = { inputs: [{ name: 'input', shape: [1, input.length], datatype: 'FP32', data: input }] };
  const t0 = performance.now();
  const started = await h.ferry.deploy(file, { model: name, ...(choice ? { target: choice } : {}) });
  const status = await h.ferry.waitForResult(started.deploymentId);
  await h.ferry.infer(started.deploymentId, request);
  const firstAnswerMs = performance.now() - t0;
  const deploy = status.stages.find((s) => s.stage === 'deploy')!;
  const wakesMs: number[] = [];
  try {
    for (let i = 0; i < wakes; i++) {
      await target.hibernate(started.deploymentId);
      const w0 = performance.now();
      await h.ferry.infer(started.deploymentId, request);
      wakesMs.push(performance.now() - w0);
    }
  } finally {
    await h.ferry.undeploy(started.deploymentId);
  }
  return { firstAnswerMs, deployStageMs: Date.parse(deploy.finishedAt!) - Date.parse(deploy.startedAt!), wakesMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'size-mb': { type: 'string', default: '10' }, wakes: { type: 'string', default: '3' } },
  });
  const cluster = stackCluster();
  const h = await startHarness('k8sbench');
  const namespace = `ferry-bench-${h.runId}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  await cluster.createNamespace(namespace);
  try {
    await h.startWorker();
    const spec = exampleModelSpec(Number(values['size-mb']));
    const bytes = generateMlpModel({ ...spec, seed: 41 });
    const file = path.join(h.tmpDir, 'example.onnx');
    await writeFile(file, bytes);
    const input = Array.from({ length: spec.inputDim }, (_, i) => Math.sin(i));
    const wakes = Number(values.wakes);
    const local = await measure(
      h,
      file,
      `kb-local-${h.runId}`,
      input,
      undefined,
      new LocalTarget(h.config.gateway.url, () => clientApiKey(h.config)),
      wakes,
    );
    const kubernetes = await measure(
      h,
      file,
      `kb-k8s-${h.runId}`,
      input,
      { kind: 'kubernetes', namespace },
      new KubernetesTarget({
        client: new ClusterClient(loadKubeConfig(h.config.kubernetes.kubeconfig)),
        namespace,
        gatewayUrl: h.config.gateway.url,
        defaultResources: h.config.replicas.defaultResources,
        drainTimeoutMs: 30_000,
      }),
      wakes,
    );
    console.log(`model: the example MLP, ${(bytes.length / 1e6).toFixed(1)} MB, one-click; ${wakes} wake(s), median`);
    console.log(
      `  deploy → first answer   kubernetes ${seconds(kubernetes.firstAnswerMs)}   local (baseline) ${seconds(local.firstAnswerMs)}`,
    );
    console.log(
      `    of which deploy stage kubernetes ${seconds(kubernetes.deployStageMs)}   local (baseline) ${seconds(local.deployStageMs)}`,
    );
    console.log(
      `  wake from zero          kubernetes ${seconds(median(kubernetes.wakesMs))}   local (baseline) ${seconds(median(local.wakesMs))}` +
        `   (kubernetes runs: ${kubernetes.wakesMs.map(seconds).join(', ')})`,
    );
  } finally {
    await h.close();
    await cluster.deleteNamespace(namespace);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
