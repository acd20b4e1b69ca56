/**
 * Cold start of an image deployment under the container runtime, next to today's plain-process figure,
 * from one run: a request to a deployment scaled to zero, until its response, for a ~10 MB model
 * (lib/onnx's exampleModelSpec(10)) in a Ferry image. One gateway per way of running replicas (in this
 * process; FERRY_CONTAINER_RUNTIME youki, runc, process), each with its standby (a container that has
 * loaded the server in advance; for processes the standby process), the same image deployed on each
 * with the same limits, variants interleaved round by round so the machine's other load falls on all
 * of them alike. Baseline: the same request to the warm deployment. Target (issue 10): ≤ 300 ms under
 * the container runtime. Also shown: the wake without a standby (a fresh container or process).
 *
 *   npx tsx bench/cold-start-container.ts [--runs 7] [--size-mb 10]
 *
 * Needs root, youki and runc (`bash infra/install-container-runtime.sh`) and a registry the gateway
 * may pull from (the dev stack's). Every figure is a median over --runs with (min–max).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type Gateway, startGateway } from '../lib/gateway';
import { buildModelImage, pushImage } from '../lib/image/modelImage';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import { useRegistry } from '../test/oci/registryFixture';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

function spread(xs: readonly number[], digits = 0): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${median(s).toFixed(digits)} ms (${s[0]!.toFixed(digits)}–${s[s.length - 1]!.toFixed(digits)})`;
}

async function control(gateway: Gateway, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${gateway.url}/_ferry${route}`, {
    method,
    ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json = (text ? JSON.parse(text) : {}) as any;
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function timeRequest(url: string, body: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return performance.now() - t0;
}

interface Variant {
  label: string;
  runtime: string;
  standby: boolean;
  gateway: Gateway;
  logs: string[];
  /** Log lines before the measured rounds (the first start is never the standby's). */
  logsBefore: number;
  url: string;
  cold: number[];
  wake: number[];
  warm: number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '7' }, 'size-mb': { type: 'string', default: '10' } },
  });
  const runs = Number(values.runs);
  const spec = exampleModelSpec(Number(values['size-mb']));
  const work = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-cold-container-'));
  const registry = await useRegistry();
  const variants: Variant[] = [];
  try {
    const bytes = generateMlpModel(spec);
    await writeFile(path.join(work, 'model.onnx'), bytes);
    const image = await buildModelImage({
      models: [{ name: spec.name!, version: '1', onnxPath: path.join(work, 'model.onnx') }],
      blobDir: path.join(work, 'blobs'),
    });
    const repository = `ferry-bench/cold-start-container-${process.pid}`;
    const pushed = await pushImage(image, registry.url, repository, 'v1');
    const input = Array.from({ length: spec.inputDim }, (_, i) => ((i * 37) % 100) / 100);
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, spec.inputDim], datatype: 'FP32', data: input }],
    });
    const deploySpec = {
      model: spec.name,
      replicas: 1,
      image: { registry: registry.url, repository, reference: pushed.digest },
      resources: { cpus: 1, memoryMb: 512 },
    };
    console.log(
      `model ${spec.name}: ${(bytes.length / 1e6).toFixed(1)} MB; image ${(image.sizeBytes / 1e6).toFixed(1)} MB compressed; limits 1 CPU, 512 MiB; ${runs} rounds`,
    );

    const settings: Array<[string, boolean]> = [
      ['youki', true],
      ['runc', true],
      ['process', true],
      ['youki', false],
      ['process', false],
    ];
    for (const [runtime, standby] of settings) {
      process.env.FERRY_CONTAINER_RUNTIME = runtime; // read by the gateway when it starts
      const logs: string[] = [];
      const gateway = await startGateway({
        port: 0,
        stateDir: path.join(work, `state-${runtime}-${standby}`),
        standby,
        allowedRegistries: [registry.url],
        log: (m) => logs.push(m),
      });
      const label = `${runtime === 'process' ? 'plain process' : `${runtime} container`}, ${standby ? 'standby' : 'no standby'}`;
      const status = await control(gateway, 'PUT', '/deployments/bench', deploySpec);
      if (status.replicas[0].runtime !== runtime) throw new Error(`${label}: ran under ${status.replicas[0].runtime}`);
      const url = `${status.endpoint}/v2/models/${spec.name}/infer`;
      for (let i = 0; i < 3; i++) await timeRequest(url, body);
      variants.push({ label, runtime, standby, gateway, logs, logsBefore: 0, url, cold: [], wake: [], warm: [] });
    }
    delete process.env.FERRY_CONTAINER_RUNTIME;
    for (const v of variants) v.logsBefore = v.logs.length;

    for (let round = 0; round < runs; round++) {
      for (const v of variants) {
        await control(v.gateway, 'POST', '/deployments/bench/hibernate');
        // The standby is refilled 1.5 s after use; let it start (and load the server) and the machine settle.
        await sleep(3000);
        v.cold.push(await timeRequest(v.url, body));
        const woke = await control(v.gateway, 'GET', '/deployments/bench');
        v.wake.push(woke.lastWakeMs);
        const warm: number[] = [];
        for (let i = 0; i < 5; i++) warm.push(await timeRequest(v.url, body));
        v.warm.push(median(warm));
      }
    }
    console.log('cold start: a request to the deployment scaled to zero → its response');
    for (const v of variants) {
      const prestarted = v.logs
        .slice(v.logsBefore)
        .filter((l) => /started replica pid\(s\) \d+:0 \(pre-started\)/.test(l)).length;
      const target =
        v.runtime !== 'process' && v.standby
          ? median(v.cold) <= 300
            ? '  (≤ 300 ms: met)'
            : '  (≤ 300 ms: NOT met)'
          : '';
      console.log(
        `  ${v.label.padEnd(28)} cold ${spread(v.cold)}   wake ${spread(v.wake)}   warm ${spread(v.warm, 1)}${target}${v.standby ? `   (${prestarted} of ${runs} wakes from the standby)` : ''}`,
      );
    }
  } finally {
    delete process.env.FERRY_CONTAINER_RUNTIME;
    for (const v of variants) {
      await control(v.gateway, 'DELETE', '/deployments/bench').catch(() => undefined);
      await v.gateway.close({ stopReplicas: true });
    }
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
