/** Shared setup for the gateway tests: model directories, a gateway, HTTP helpers, pid checks. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { startGateway, type Gateway, type GatewayOptions } from '../../lib/gateway';
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

export async function inferThrough(endpoint: string): Promise<{ status: number; json: any; replica: string | null; headers: Headers }> {
  const res = await fetch(`${endpoint}/v2/models/mlp/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: SAMPLE_INPUT }] }),
  });
  return { status: res.status, json: await res.json(), replica: res.headers.get('x-ferry-replica'), headers: res.headers };
}

export async function control(gatewayUrl: string, method: string, route: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${gatewayUrl}/_ferry${route}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
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
  gateway: Gateway;
  logs: string[];
  /** Deletes every deployment, stops the gateway and removes the temp dir; fails if a replica survives. */
  cleanup(): Promise<void>;
}

export async function startTestGateway(prefix: string, opts: Partial<GatewayOptions> = {}): Promise<GatewayFixture> {
  const dir = await tempDir(prefix);
  const logs: string[] = [];
  const gateway = await startGateway({ port: 0, stateDir: path.join(dir, 'state'), stopGraceMs: 5000, readyTimeoutMs: 30_000, log: (m) => logs.push(m), ...opts });
  return {
    dir,
    gateway,
    logs,
    async cleanup() {
      const { json } = await control(gateway.url, 'GET', '/deployments');
      const pids = json.deployments.flatMap((d: any) => d.replicas.map((r: any) => r.pid));
      for (const d of json.deployments) await control(gateway.url, 'DELETE', `/deployments/${d.id}`);
      await gateway.close({ stopReplicas: true });
      await assertAllDead(pids, 'cleanup');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
