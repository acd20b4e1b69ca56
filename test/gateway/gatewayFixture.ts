/** Shared setup for the gateway tests: model directories, a gateway, HTTP helpers, pid checks. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { isAlive } from '../../client/services';
import { type Gateway, type GatewayOptions, startGateway } from '../../lib/gateway';
import { attr, makeNode, tensorValueInfo } from '../../lib/onnx/builders';
import { encodeModel } from '../../lib/onnx/model';
import { float32Tensor, TensorDataType } from '../../lib/onnx/tensor';
import { mlpModel, writeModelDir } from '../runtime/onnxTestModels';

export const MLP_V1 = mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 1 });
export const MLP_V2 = mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 2 });
export const SAMPLE_INPUT = [0.5, -1, 0.25, 2];

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `ferry-${prefix}-`));
}

export async function modelDirWith(bytes: Uint8Array, parent: string, name = 'models'): Promise<string> {
  return writeModelDir(path.join(parent, name), [{ name: 'mlp', version: '1', bytes }]);
}

/** What onnxruntime computes in-process for SAMPLE_INPUT. */
export async function directOutput(bytes: Uint8Array): Promise<number[]> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(SAMPLE_INPUT), [1, 4]) });
  await session.release();
  return Array.from(out.output.data as Float32Array);
}

export async function inferThrough(
  endpoint: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; replica: string | null; revision: string | null; headers: Headers }> {
  const res = await fetch(`${endpoint}/v2/models/mlp/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: SAMPLE_INPUT }] }),
  });
  return {
    status: res.status,
    json: await res.json(),
    replica: res.headers.get('x-ferry-replica'),
    revision: res.headers.get('x-ferry-revision'),
    headers: res.headers,
  };
}

export async function control(
  gatewayUrl: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${gatewayUrl}/_ferry${route}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export { isAlive };

export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function assertAllDead(pids: number[], what: string): Promise<void> {
  await eventually(`${what}: pids ${pids.join(', ')} to be gone`, () => pids.every((p) => !isAlive(p)), 10_000);
}

export interface GatewayFixture {
  dir: string;
  /** The gateway; a test that restarts it puts the new one here, which cleanup() then stops. */
  gateway: Gateway;
  logs: string[];
  /** Deletes every deployment, stops the gateway and removes the temp dir; fails if a replica survives. */
  cleanup(): Promise<void>;
}

/** `adminKey`: the key cleanup sends, for a gateway that checks keys. */
export async function startTestGateway(
  prefix: string,
  opts: Partial<GatewayOptions> = {},
  adminKey?: string,
): Promise<GatewayFixture> {
  const dir = await tempDir(prefix);
  const logs: string[] = [];
  const gateway = await startGateway({
    port: 0,
    stateDir: path.join(dir, 'state'),
    stopGraceMs: 5000,
    readyTimeoutMs: 30_000,
    log: (m) => logs.push(m),
    ...opts,
  });
  const fixture: GatewayFixture = {
    dir,
    gateway,
    logs,
    async cleanup() {
      const gateway = fixture.gateway; // a test may have replaced it with a restarted one
      const auth: Record<string, string> = adminKey ? { authorization: `Bearer ${adminKey}` } : {};
      const { json } = await control(gateway.url, 'GET', '/deployments', undefined, auth);
      const pids = json.deployments.flatMap((d: any) => d.replicas.map((r: any) => r.pid));
      for (const d of json.deployments) await control(gateway.url, 'DELETE', `/deployments/${d.id}`, undefined, auth);
      await gateway.close({ stopReplicas: true });
      await assertAllDead(pids, 'cleanup');
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

/**
 * A model whose cost the client chooses, for observing requests in flight: input "x" [1, dim] is tiled
 * to `repeats[0]` rows, which go through `layers` dim×dim MatMul+Relu layers, then are averaged
 * back to "y" [1, dim]. At dim 256 and 8 layers, 8000 rows take ~140 ms of onnxruntime here.
 */
export function slowMatMulModel(dim = 256, layers = 8): Uint8Array {
  let seed = 7;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 4294967296) * 2 - 1;
  };
  const initializer = [];
  const node = [makeNode('Tile', ['x', 'repeats'], ['tiled'])];
  let current = 'tiled';
  for (let l = 0; l < layers; l++) {
    initializer.push(
      float32Tensor(
        `w${l}`,
        [dim, dim],
        Float32Array.from({ length: dim * dim }, () => random() / Math.sqrt(dim)),
      ),
    );
    node.push(makeNode('MatMul', [current, `w${l}`], [`mm${l}`]), makeNode('Relu', [`mm${l}`], [`relu${l}`]));
    current = `relu${l}`;
  }
  node.push(makeNode('ReduceMean', [current], ['y'], { attributes: [attr.ints('axes', [0])] }));
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'slow',
      node,
      initializer,
      input: [
        tensorValueInfo('x', TensorDataType.FLOAT, [1, dim]),
        tensorValueInfo('repeats', TensorDataType.INT64, [2]),
      ],
      output: [tensorValueInfo('y', TensorDataType.FLOAT, [1, dim])],
    },
  });
}

export async function slowModelDir(parent: string, name = 'slow-models', dim = 256): Promise<string> {
  return writeModelDir(path.join(parent, name), [{ name: 'slow', version: '1', bytes: slowMatMulModel(dim) }]);
}

export interface InferOutcome {
  /** performance.now() when the request was sent (set by startLoad). */
  sentAt?: number;
  status: number;
  revision: string | null;
  replica: string | null;
  json: any;
}

/** One request to the slow model with `rows` rows of work. */
export async function inferSlow(
  endpoint: string,
  rows: number,
  headers: Record<string, string> = {},
  dim = 256,
): Promise<InferOutcome> {
  const res = await fetch(`${endpoint}/v2/models/slow/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      inputs: [
        { name: 'x', shape: [1, dim], datatype: 'FP32', data: new Array(dim).fill(0.5) },
        { name: 'repeats', shape: [2], datatype: 'INT64', data: [rows, 1] },
      ],
    }),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return {
    status: res.status,
    revision: res.headers.get('x-ferry-revision'),
    replica: res.headers.get('x-ferry-replica'),
    json,
  };
}

/** `concurrency` clients sending `request()` back to back until `stop()`; every outcome is kept. */
export function startLoad(
  concurrency: number,
  request: () => Promise<InferOutcome>,
): { outcomes: InferOutcome[]; stop(): Promise<InferOutcome[]> } {
  const outcomes: InferOutcome[] = [];
  let running = true;
  const clients = Array.from({ length: concurrency }, async () => {
    while (running) {
      const sentAt = performance.now();
      try {
        outcomes.push({ ...(await request()), sentAt });
      } catch (err) {
        outcomes.push({ sentAt, status: 0, revision: null, replica: null, json: { error: (err as Error).message } });
      }
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(clients);
      return outcomes;
    },
  };
}

/** The gateway's /metrics text, and one sample's value (undefined when absent). */
export async function gatewayMetrics(
  gatewayUrl: string,
): Promise<{ text: string; value(name: string, labels: Record<string, string>): number | undefined }> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  return {
    text,
    value(name, labels) {
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = (m[3] ?? '').split(',');
        if (want.every((w) => have.includes(w))) return Number(m[4]);
      }
      return undefined;
    },
  };
}
