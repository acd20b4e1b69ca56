/**
 * What the gateway adds: latency and throughput of inference requests through the gateway against
 * the same requests sent straight to the replica it routes to (same process, same model, same body),
 * measured in the same run. (bench/serving-overhead.ts compares the server with onnxruntime in-process.)
 *
 *   npx tsx bench/gateway-overhead.ts [--runs 3] [--seconds 5] [--connections 16]
 *
 * The gateway checks keys (auth on, keys in the dev stack's PostgreSQL, so the stack must be running).
 * Four ways to the same model, interleaved round by round:
 *   direct           wrk → a replica of the same launch plan on a 127.0.0.1 TCP port (what a client
 *                    talking to the server itself gets; wrk cannot reach the gateway's replicas, which
 *                    listen on Unix domain sockets)
 *   gateway          wrk → gateway → replica (one revision, fixed replica count), no key: the
 *                    deployment is made public for these rounds
 *   gateway + key    the same deployment and replica made keyed again (no restart), each request with
 *                    `Authorization: Bearer <key>` (infer on its project): what checking a key adds
 *   gateway, routed  a second deployment of the same model (its own replica) with autoscaling
 *                    bookkeeping on (min = max = 1) and a header rule evaluated on every request
 * Latency: 1 connection, one request at a time (wrk p50/p99). Throughput: --connections closed-loop
 * connections. Load from wrk on 127.0.0.1; the gateway runs in this process, each replica in its own.
 * Also the gateway's CPU time per request (this process's user + system time over the run ÷ requests):
 * far less noisy than latency on a shared machine. Every figure is the median of --runs rounds with
 * (min–max): the machine is shared. And the key check alone (parse the header, hash the key, look it up
 * in the verifier's cache, decide), timed in a loop in this process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { KeyStore } from '../lib/auth/keyStore';
import { loadConfig } from '../lib/config';
import { closePools, getPool } from '../lib/db/pool';
import { startGateway } from '../lib/gateway';
import { GatewayAccess } from '../lib/gateway/gatewayAccess';
import { launchPlanForModelDir } from '../lib/gateway/launchPlan';
import { type Replica, spawnReplica, waitUntilReady } from '../lib/gateway/replicaProcess';
import { generateMlpModel } from '../lib/onnx/generate';
import { ensureWrk, type LoadResult, log, machineLine, median, runWrk, spread, writeServingDir } from './servingLoad';

type Way = 'direct' | 'gateway' | 'keyed' | 'routed';
const WAYS: Way[] = ['direct', 'gateway', 'keyed', 'routed'];
const LABEL: Record<Way, string> = {
  direct: 'direct to the replica',
  gateway: 'through the gateway, no key',
  keyed: 'through the gateway, with a key',
  routed: 'gateway, autoscaler + header rule',
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
    },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  ensureWrk();
  const config = loadConfig();
  const keys = new KeyStore(getPool(config.postgres.url));
  const project = `bench-${Date.now().toString(36)}`;
  const admin = (await keys.createKey({ project, name: 'admin', scopes: ['admin'] })).key;
  const inferKey = (await keys.createKey({ project, name: 'infer', scopes: ['infer'] })).key;
  const access = { auth: true, verifyKey: (k: string) => keys.verify(k) };
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-gateway-'));
  const gateway = await startGateway({ port: 0, stateDir: path.join(tmp, 'state'), log: () => {}, access });
  let direct: Replica | undefined;
  const controlHeaders = { 'content-type': 'application/json', authorization: `Bearer ${admin}` };
  try {
    const spec = { inputDim: 64, hiddenDims: [256, 256], outputDim: 10, seed: 3 };
    const modelDir = await writeServingDir(path.join(tmp, 'model'), 'm', generateMlpModel(spec));
    const body = JSON.stringify({
      inputs: [
        { name: 'input', shape: [1, 64], datatype: 'FP32', data: Array.from({ length: 64 }, (_, i) => (i % 7) / 7) },
      ],
    });
    const put = async (id: string, extra: object) => {
      const res = await fetch(`${gateway.url}/_ferry/deployments/${id}`, {
        method: 'PUT',
        headers: controlHeaders,
        body: JSON.stringify({ model: 'm', replicas: 1, modelDir, access: { project, public: true }, ...extra }),
      });
      const status = (await res.json()) as any;
      if (!res.ok) throw new Error(`deploy ${id}: ${res.status} ${JSON.stringify(status)}`);
      return status;
    };
    const plain = await put('plain', {});
    const routed = await put('routed', {
      autoscaling: { minReplicas: 1, maxReplicas: 1, targetInFlight: 4, stableWindowMs: 10_000, panicWindowMs: 1000 },
    });
    // A header rule on the routed deployment (its only revision is "default"): evaluated, never matching.
    await fetch(`${gateway.url}/_ferry/deployments/routed/traffic`, {
      method: 'PUT',
      headers: controlHeaders,
      body: JSON.stringify({
        split: { default: 100 },
        rules: [{ header: 'x-user-group', value: 'beta', revision: 'default' }],
      }),
    });
    // The direct baseline: the same program and model the gateway runs, on a TCP port.
    direct = await spawnReplica(
      await launchPlanForModelDir(modelDir, path.join(tmp, 'state')),
      path.join(tmp, 'direct-logs'),
      'direct',
    );
    await waitUntilReady(direct, 60_000);
    const urls: Record<Way, string> = {
      direct: `http://127.0.0.1:${direct.port}/v2/models/m/infer`,
      gateway: `${plain.endpoint}/v2/models/m/infer`,
      keyed: `${plain.endpoint}/v2/models/m/infer`,
      routed: `${routed.endpoint}/v2/models/m/infer`,
    };
    const headers: Record<Way, Record<string, string>> = {
      direct: {},
      gateway: {},
      keyed: { authorization: `Bearer ${inferKey}` },
      routed: {},
    };
    // "gateway" and "gateway + key" are the same deployment and replica, public for one and keyed for
    // the other: a change of access restarts nothing.
    const setPublic = async (isPublic: boolean) => {
      const res = await fetch(`${gateway.url}/_ferry/deployments/plain`, {
        method: 'PUT',
        headers: controlHeaders,
        body: JSON.stringify({ ...plain.spec, access: { project, public: isPublic } }),
      });
      if (!res.ok) throw new Error(`access of plain: ${res.status} ${await res.text()}`);
    };
    const prepare = (w: Way) => (w === 'gateway' ? setPublic(true) : w === 'keyed' ? setPublic(false) : undefined);
    for (const w of WAYS) {
      await prepare(w);
      const res = await fetch(urls[w], {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers[w] },
        body,
      });
      if (res.status !== 200) throw new Error(`${w} ${urls[w]}: ${res.status} ${await res.text()}`);
    }
    await setPublic(false);
    const refused = await fetch(urls.keyed, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (refused.status !== 401) throw new Error(`a keyed deployment answered ${refused.status} without a key`);
    // Warm both replicas and the gateway's connection pool.
    for (const w of WAYS) {
      await prepare(w);
      await runWrk({ url: urls[w], body, headers: headers[w], connections: 4, seconds: 1 });
    }

    const none = (): Record<Way, never[]> => ({ direct: [], gateway: [], keyed: [], routed: [] });
    const latency: Record<Way, LoadResult[]> = none();
    const load: Record<Way, LoadResult[]> = none();
    // This process's CPU time per request while wrk ran against it (µs): the gateway's cost.
    const cpuAt1: Record<Way, number[]> = none();
    const cpuAtN: Record<Way, number[]> = none();
    const measured = async (w: Way, c: number, cpu: Record<Way, number[]>) => {
      await prepare(w);
      const before = process.cpuUsage();
      const result = await runWrk({ url: urls[w], body, headers: headers[w], connections: c, seconds });
      const used = process.cpuUsage(before);
      cpu[w].push((used.user + used.system) / Math.max(1, result.requests));
      return result;
    };
    for (let r = 0; r < runs; r++) {
      for (const w of WAYS) {
        log(`round ${r + 1}/${runs}: ${w}, latency (1 connection)`);
        latency[w].push(await measured(w, 1, cpuAt1));
        await sleep(200);
      }
      for (const w of WAYS) {
        log(`round ${r + 1}/${runs}: ${w}, throughput (${connections} connections)`);
        load[w].push(await measured(w, connections, cpuAtN));
        await sleep(200);
      }
    }
    const errors = WAYS.reduce(
      (a, w) => a + latency[w].reduce((b, x) => b + x.errors, 0) + load[w].reduce((b, x) => b + x.errors, 0),
      0,
    );
    const say = (s: string) => console.log(s);
    say(
      `gateway overhead: ${spec.inputDim}→${spec.hiddenDims.join('→')}→${spec.outputDim} MLP, ${runs} rounds × ${seconds} s, median (min–max)`,
    );
    say(machineLine());
    say(`errors (non-2xx + socket): ${errors}`);
    say('latency, 1 connection              p50                        p99');
    for (const w of WAYS)
      say(
        `  ${LABEL[w].padEnd(34)}${spread(
          latency[w].map((x) => x.p50Ms),
          3,
          ' ms',
        ).padEnd(27)}${spread(
          latency[w].map((x) => x.p99Ms),
          3,
          ' ms',
        )}`,
      );
    for (const w of ['gateway', 'keyed', 'routed'] as const) {
      const added = latency[w].map((x, i) => x.p50Ms - latency.direct[i].p50Ms);
      const added99 = latency[w].map((x, i) => x.p99Ms - latency.direct[i].p99Ms);
      say(`  added by ${LABEL[w]}: p50 ${spread(added, 3, ' ms')}, p99 ${spread(added99, 3, ' ms')}`);
    }
    const byKey = latency.keyed.map((x, i) => (x.p50Ms - latency.gateway[i].p50Ms) * 1000);
    say(`  added by checking the key (same deployment and replica): p50 ${spread(byKey, 1, ' µs')}`);
    say(`throughput, ${connections} connections         requests/s                 vs direct`);
    for (const w of WAYS) {
      const ratio = load[w].map((x, i) => x.requestsPerSecond / load.direct[i].requestsPerSecond);
      say(
        `  ${LABEL[w].padEnd(34)}${spread(
          load[w].map((x) => x.requestsPerSecond),
          0,
        ).padEnd(27)}${w === 'direct' ? '1.00' : spread(ratio, 2)}`,
      );
    }
    say(`  p50 under load: ${WAYS.map((w) => `${w} ${median(load[w].map((x) => x.p50Ms)).toFixed(2)} ms`).join(', ')}`);
    say('gateway CPU time per request (this process; direct: ~0, wrk and the replicas run elsewhere)');
    for (const w of ['gateway', 'keyed', 'routed'] as const) {
      say(
        `  ${LABEL[w].padEnd(34)}1 connection ${spread(cpuAt1[w], 0, ' µs')}, ${connections} connections ${spread(cpuAtN[w], 0, ' µs')}`,
      );
    }
    say(
      `key check alone (header parsed, key hashed, cache hit, decision), in this process: ${await keyCheckMicros(keys, inferKey, project)}`,
    );
  } finally {
    await direct?.stop(5000);
    await gateway.close({ stopReplicas: true });
    await rm(tmp, { recursive: true, force: true });
    await keys.revokeKey(`${project}/admin`).catch(() => undefined);
    await keys.revokeKey(`${project}/infer`).catch(() => undefined);
    await closePools();
  }
}

/** Median of 5 timed loops of the gateway's per-request key check with a cached key, in µs. */
async function keyCheckMicros(keys: KeyStore, key: string, project: string): Promise<string> {
  const access = new GatewayAccess({ auth: true, verifyKey: (k) => keys.verify(k) });
  const header = `Bearer ${key}`;
  await access.principalOf(header, '127.0.0.1'); // into the cache, as after a deployment's first request
  const rounds: number[] = [];
  const n = 200_000;
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const p = access.principalOf(header, '127.0.0.1');
      if (p instanceof Promise || !access.inference(p, project).ok) throw new Error('the key was not cached');
    }
    rounds.push(Number(process.hrtime.bigint() - start) / 1000 / n);
  }
  return spread(rounds, 2, ' µs');
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
