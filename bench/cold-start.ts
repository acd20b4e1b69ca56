/**
 * Cold start: a request to a deployment scaled to zero, until its response, for a ~10 MB model
 * (lib/onnx's exampleModelSpec(10)); baseline from the same run: the same request to the warm
 * deployment. Target (issue 4): ≤ 300 ms.
 *
 *   npx tsx bench/cold-start.ts [--runs 7] [--size-mb 10] [--no-image] [--no-breakdown]
 *
 * 1. End to end through the gateway (in this process), the deployment served from a model dir:
 *    with the gateway's standby process (the default) and without it; and the same for a model image
 *    pulled from the registry (skipped when the registry is not running). Variants are interleaved
 *    round by round, so the machine's other load falls on all of them alike.
 * 2. Where the time goes: replica start-up until ready (readiness polled every 5 ms), launched
 *    directly the ways the gateway did before (a new process or its standby process with node booted
 *    and a code cache; a TCP port) and does now (a Unix domain socket; the standby process has loaded
 *    the server bundle and set up onnxruntime in advance), with the replica's own split of that time
 *    (its code until main() ran, its models).
 * Every figure is a median over --runs with (min–max): the machine is shared, read the spread.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type Gateway, startGateway } from '../lib/gateway';
import { type LaunchPlan, launchPlanForModelDir } from '../lib/gateway/launchPlan';
import {
  type Replica,
  readProcStartTicks,
  spawnReplica,
  standbyBootEnv,
  waitUntilReady,
} from '../lib/gateway/replicaProcess';
import { StandbyProcess } from '../lib/gateway/standbyProcess';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import { registryAnswers } from '../test/oci/registryFixture';

const _repoRoot = path.resolve(__dirname, '..');

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function spread(xs: readonly number[], digits = 0): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${median(s).toFixed(digits)} ms (${s[0].toFixed(digits)}–${s[s.length - 1].toFixed(digits)})`;
}

interface Model {
  dir: string;
  name: string;
  bytes: number;
  body: string;
}

async function writeModel(parent: string, sizeMb: number): Promise<Model> {
  const spec = exampleModelSpec(sizeMb);
  const bytes = generateMlpModel(spec);
  const dir = path.join(parent, 'model-dir');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.join(dir, spec.name!), { recursive: true });
  await writeFile(path.join(dir, spec.name!, 'model.onnx'), bytes);
  await writeFile(
    path.join(dir, 'ferry-models.json'),
    JSON.stringify({ models: [{ name: spec.name, version: '1', path: `${spec.name}/model.onnx` }] }),
  );
  const input = Array.from({ length: spec.inputDim }, (_, i) => ((i * 37) % 100) / 100);
  const body = JSON.stringify({
    inputs: [{ name: 'input', shape: [1, spec.inputDim], datatype: 'FP32', data: input }],
  });
  return { dir, name: spec.name!, bytes: bytes.length, body };
}

async function timeRequest(url: string, body: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return ms;
}

interface EndToEnd {
  cold: number[];
  wake: number[];
  warm: number[];
}

/** One deployment on one gateway, measured round by round (interleaved with the other variants). */
interface Variant {
  label: string;
  gateway: Gateway;
  id: string;
  url: string;
  result: EndToEnd;
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

async function deployVariant(
  label: string,
  gateway: Gateway,
  id: string,
  spec: object,
  model: Model,
): Promise<Variant> {
  const status = await control(gateway, 'PUT', `/deployments/${id}`, spec);
  const url = `${status.endpoint}/v2/models/${model.name}/infer`;
  for (let i = 0; i < 3; i++) await timeRequest(url, model.body);
  return { label, gateway, id, url, result: { cold: [], wake: [], warm: [] } };
}

/** Hibernate → one request (cold) → five requests (warm). */
async function measureRound(v: Variant, model: Model): Promise<void> {
  await control(v.gateway, 'POST', `/deployments/${v.id}/hibernate`);
  // The standby process is refilled 1.5 s after use; let it boot and the machine settle.
  await sleep(2500);
  v.result.cold.push(await timeRequest(v.url, model.body));
  v.result.wake.push((await control(v.gateway, 'GET', `/deployments/${v.id}`)).lastWakeMs);
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) warm.push(await timeRequest(v.url, model.body));
  v.result.warm.push(median(warm));
}

function report(label: string, e: EndToEnd): void {
  console.log(`  ${label}`);
  console.log(
    `    cold: request to a scaled-to-zero deployment → response   ${spread(e.cold)}   ${median(e.cold) <= 300 ? '(target ≤ 300 ms: met)' : '(target ≤ 300 ms: NOT met)'}`,
  );
  console.log(`      of which the wake (gateway's lastWakeMs: first replica ready)  ${spread(e.wake)}`);
  console.log(`    baseline: the same request to the warm deployment               ${spread(e.warm, 1)}`);
  console.log(`    ratio cold / warm: ${(median(e.cold) / median(e.warm)).toFixed(0)}x`);
}

interface Launch {
  label: string;
  plan: LaunchPlan;
  standby: StandbyProcess | undefined;
}

/** One inference request on a replica's socket or port: milliseconds until the whole answer. */
function timeReplicaRequest(replica: Replica, modelName: string, body: string): Promise<number> {
  const where = replica.address.socketPath
    ? { socketPath: replica.address.socketPath }
    : { host: '127.0.0.1', port: replica.address.port };
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...where,
        method: 'POST',
        path: `/v2/models/${modelName}/infer`,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`answered ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The replica's own account of its start (runtime/server/main.ts's ready line): code and model phases. */
/** The samples of one launch kind, created on first use. */
function sampleOf(samples: Record<string, number[]>, label: string): number[] {
  samples[label] ??= [];
  return samples[label];
}

function phasesOf(replica: Replica): { code: number; models: number } | undefined {
  const text = readFileSync(replica.record.logFile, 'utf8');
  const lines = [...text.matchAll(/ferry inference server ready at .*: code (\d+) ms, models (\d+) ms\)/g)];
  const last = lines[lines.length - 1];
  return last ? { code: Number(last[1]), models: Number(last[2]) } : undefined;
}

/**
 * Replica start → ready, and its first inference, launched directly with the gateway's functions, as
 * the gateway did before (TCP port, a standby process that only had node booted and the code cache)
 * and does now (a Unix domain socket, the standby process has loaded the server and set up
 * onnxruntime in advance).
 */
async function breakdown(stateDir: string, model: Model, runs: number): Promise<void> {
  const plan = await launchPlanForModelDir(model.dir, stateDir);
  if (plan.args[0].includes('tsx')) throw new Error('the server bundle could not be built');
  const before: LaunchPlan = { ...plan, socket: false, standbyEntry: false };
  const socketDir = path.join(stateDir, 'gateway', 'sockets');
  const plainStandby = new StandbyProcess(stateDir, standbyBootEnv, readProcStartTicks, log);
  const prewarmStandby = new StandbyProcess(stateDir, standbyBootEnv, readProcStartTicks, log);
  const launches: Launch[] = [
    { label: 'new process, port (before)', plan: before, standby: undefined },
    { label: 'new process, socket', plan, standby: undefined },
    { label: 'standby + code cache, port (before)', plan: before, standby: plainStandby },
    { label: 'standby, loaded in advance, socket (now)', plan, standby: prewarmStandby },
  ];
  const logDir = path.join(stateDir, 'bench-logs');
  const ready: Record<string, number[]> = {};
  const first: Record<string, number[]> = {};
  const code: Record<string, number[]> = {};
  const models: Record<string, number[]> = {};
  const standbyUp = async (standby: StandbyProcess) => {
    standby.fill();
    for (const deadline = Date.now() + 10_000; !standby.waiting && Date.now() < deadline; ) await sleep(20);
    await sleep(300); // booted, waiting on stdin (and done loading, when it loads in advance)
  };
  try {
    // Prime the code cache, and show the second standby which program to load in advance.
    for (const standby of [plainStandby, prewarmStandby]) {
      await standbyUp(standby);
      const primer = await spawnReplica(
        standby === prewarmStandby ? plan : before,
        logDir,
        'bench',
        standby,
        socketDir,
      );
      await waitUntilReady(primer, 30_000);
      await sleep(1500);
      await primer.stop(5000);
    }
    for (let r = 0; r < runs; r++) {
      for (const l of launches) {
        if (l.standby) await standbyUp(l.standby);
        else await sleep(300);
        const t0 = performance.now();
        const replica = await spawnReplica(l.plan, logDir, 'bench', l.standby, socketDir);
        if (l.standby && !replica.prestarted) throw new Error('the standby process was not used');
        await waitUntilReady(replica, 30_000);
        const t1 = performance.now();
        sampleOf(first, l.label).push(await timeReplicaRequest(replica, model.name, model.body));
        sampleOf(ready, l.label).push(t1 - t0);
        const phases = phasesOf(replica);
        if (phases) {
          sampleOf(code, l.label).push(phases.code);
          sampleOf(models, l.label).push(phases.models);
        }
        await replica.stop(5000);
      }
    }
  } finally {
    await plainStandby.close();
    await prewarmStandby.close();
  }
  console.log(
    "  where the time goes: one replica started directly (no gateway), start → ready (the replica's own account: loading its",
  );
  console.log('  code until main() ran, then loading the model); then its first request');
  for (const l of launches) {
    const phase = code[l.label]?.length
      ? `code ${spread(code[l.label]).padEnd(17)} models ${spread(models[l.label]).padEnd(17)}`
      : '';
    console.log(
      `    ${l.label.padEnd(48)} ready ${spread(ready[l.label]).padEnd(18)} ${phase} first request ${spread(first[l.label], 1)}`,
    );
  }
  const boots: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    boots.push(performance.now() - t0);
  }
  console.log(`    for scale: \`node -e 0\` (start and exit an empty node) ${spread(boots)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '7' },
      'size-mb': { type: 'string', default: '10' },
      'no-image': { type: 'boolean', default: false },
      'no-breakdown': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-cold-'));
  try {
    const model = await writeModel(tmp, Number(values['size-mb']));
    console.log(
      `cold start, ${(model.bytes / 1e6).toFixed(1)} MB MLP (exampleModelSpec(${values['size-mb']})), ${runs} runs each, median (min–max)`,
    );
    console.log(
      `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (shared)`,
    );

    const gateways: Gateway[] = [];
    const variants: Variant[] = [];
    try {
      const dirSpec = { model: model.name, replicas: 1, modelDir: model.dir };
      for (const standby of [true, false]) {
        const gateway = await startGateway({
          port: 0,
          stateDir: path.join(tmp, `gw-dir-${standby}`),
          standby,
          log: () => {},
        });
        gateways.push(gateway);
        const label = `model dir deployment, gateway ${standby ? 'with its standby process (default)' : 'without a standby process'}`;
        variants.push(await deployVariant(label, gateway, 'cold', dirSpec, model));
      }
      if (!values['no-image']) {
        const { loadConfig } = await import('../lib/config');
        const registry = loadConfig().registry.url;
        if (!(await registryAnswers(registry))) {
          console.log(`  image deployment: skipped (no registry at ${registry}; bash infra/stack.sh start)`);
        } else {
          log('image: building and pushing …');
          const { buildModelImage, pushImage } = await import('../lib/image/modelImage');
          const image = await buildModelImage({
            models: [{ name: model.name, version: '1', onnxPath: path.join(model.dir, model.name, 'model.onnx') }],
            blobDir: path.join(tmp, 'blobs'),
          });
          const repository = `ferry-bench/cold-start-${process.pid}`;
          const pushed = await pushImage(image, registry, repository, 'v1');
          const gateway = await startGateway({ port: 0, stateDir: path.join(tmp, 'gw-image'), log: () => {} });
          gateways.push(gateway);
          const spec = { model: model.name, replicas: 1, image: { registry, repository, reference: pushed.digest } };
          variants.push(
            await deployVariant(
              'image deployment (pulled and unpacked once; wakes from the unpacked rootfs), standby on',
              gateway,
              'cold-image',
              spec,
              model,
            ),
          );
        }
      }
      // A deployment serves a while before it is scaled to zero: its first replica leaves the V8 code
      // cache (written 1 s after start) that later cold starts compile from.
      await sleep(2000);
      for (let r = 0; r < runs; r++) {
        for (const v of variants) {
          log(`round ${r + 1}/${runs}: ${v.label}`);
          await measureRound(v, model);
        }
      }
      for (const v of variants) report(v.label, v.result);
    } finally {
      for (const g of gateways) await g.close({ stopReplicas: true });
    }

    if (!values['no-breakdown']) {
      log('breakdown …');
      await breakdown(path.join(tmp, 'breakdown'), model, runs);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
