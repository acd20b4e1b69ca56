/**
 * Starts Ferry's own processes for a test file — a pipeline worker on a private task queue and a
 * gateway with a private state dir and port — against the dev stack's real Temporal, Postgres,
 * SeaweedFS and registry. Everything it starts, it stops.
 *
 * Like a machine after its first `ferry up`, the private state dir holds a bootstrap admin key
 * (admin.key): auth is on by default, and the gateway and worker use that key as they would anywhere.
 * This process's `config` sends it too (unless FERRY_API_KEY names another key); it is revoked on close.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FerryClient } from '../../client/sdk';
import { ensureBootstrapAdminKey, readLocalAdminKey } from '../../lib/auth/bootstrapKey';
import { authHeader } from '../../lib/auth/clientKey';
import { KeyStore } from '../../lib/auth/keyStore';
import { type FerryConfig, loadConfig } from '../../lib/config';
import { getPool } from '../../lib/db/pool';
import { freePort } from '../../lib/gateway/replicaProcess';
import { generateMlpModel } from '../../lib/onnx/generate';

const repoRoot = path.resolve(__dirname, '../..');

export { freePort };

export interface FerryHarness {
  config: FerryConfig;
  ferry: FerryClient;
  runId: string;
  tmpDir: string;
  env: NodeJS.ProcessEnv;
  /** The bootstrap admin key in the harness's state dir (what `ferry up` would have made). */
  adminKey: string;
  /** `{ authorization: 'Bearer <adminKey>' }`, for requests a test sends by hand. */
  adminAuth: Record<string, string>;
  startWorker(): Promise<ChildProcess>;
  worker(): ChildProcess | undefined;
  writeModel(
    name: string,
    spec?: { inputDim: number; hiddenDims: number[]; outputDim: number; seed?: number },
  ): Promise<string>;
  gatewayStatus(deploymentId: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

function waitForLine(child: ChildProcess, logFile: string, needle: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const timer = setInterval(() => {
      const log = readFileSync(logFile, 'utf8');
      if (log.includes(needle)) {
        clearInterval(timer);
        resolve();
      } else if (child.exitCode !== null || Date.now() > deadline) {
        clearInterval(timer);
        reject(new Error(`process did not print "${needle}" (exit ${child.exitCode}); log:\n${log.slice(-3000)}`));
      }
    }, 100);
  });
}

export async function startHarness(label: string): Promise<FerryHarness> {
  const runId = `${label}-${Date.now().toString(36)}`;
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), `ferry-test-${label}-`));
  const gatewayPort = await freePort();
  Object.assign(process.env, {
    FERRY_TASK_QUEUE: `ferry-test-${runId}`,
    FERRY_GATEWAY_PORT: String(gatewayPort),
    FERRY_GATEWAY_URL: `http://127.0.0.1:${gatewayPort}`,
    FERRY_WORKER_METRICS_PORT: '0',
  });
  const env = { ...process.env, FERRY_STATE_DIR: path.join(tmpDir, 'state') };
  const loaded = loadConfig();
  const keys = new KeyStore(getPool(loaded.postgres.url));
  await ensureBootstrapAdminKey(env.FERRY_STATE_DIR, keys);
  const adminKey = (await readLocalAdminKey(env.FERRY_STATE_DIR))!;
  const config: FerryConfig = { ...loaded, api: { ...loaded.api, key: loaded.api.key ?? adminKey } };
  const children: ChildProcess[] = [];
  let worker: ChildProcess | undefined;

  const spawnLogged = (name: string, args: string[]) => {
    const logFile = path.join(tmpDir, `${name}-${children.length}.log`);
    const fd = openSync(logFile, 'w');
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    children.push(child);
    return { child, logFile };
  };

  const gw = spawnLogged('gateway', ['client/cli/main.ts', 'gateway']);
  await waitForLine(gw.child, gw.logFile, 'ferry gateway:', 30_000);

  const harness: FerryHarness = {
    config,
    ferry: await FerryClient.connect(config),
    runId,
    tmpDir,
    env,
    adminKey,
    adminAuth: { authorization: `Bearer ${adminKey}` },
    async startWorker() {
      const w = spawnLogged('worker', ['workers/main.ts']);
      await waitForLine(w.child, w.logFile, 'ferry worker: task queue', 60_000);
      worker = w.child;
      return w.child;
    },
    worker: () => worker,
    async writeModel(name, spec = { inputDim: 32, hiddenDims: [64], outputDim: 8 }) {
      const file = path.join(tmpDir, `${name}.onnx`);
      await writeFile(file, generateMlpModel({ ...spec, seed: spec.seed ?? 1 }));
      return file;
    },
    async gatewayStatus(deploymentId) {
      const res = await fetch(`${config.gateway.url}/_ferry/deployments/${encodeURIComponent(deploymentId)}`, {
        headers: await authHeader(config),
      });
      return { status: res.status, body: await res.json().catch(() => undefined) };
    },
    async close() {
      // Remove every deployment this gateway serves, so no replica outlives the test (with this machine's
      // key, for a gateway that checks keys).
      const headers = await authHeader(config);
      const res = await fetch(`${config.gateway.url}/_ferry/deployments`, { headers }).catch(() => undefined);
      const list = res?.ok ? ((await res.json()) as any) : [];
      for (const d of Array.isArray(list) ? list : (list.deployments ?? [])) {
        await fetch(`${config.gateway.url}/_ferry/deployments/${encodeURIComponent(d.id)}`, {
          method: 'DELETE',
          headers,
        }).catch(() => {});
      }
      await harness.ferry.close();
      for (const child of children) {
        if (child.exitCode === null) child.kill('SIGTERM');
      }
      await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
      await keys.revokeKey(adminKey).catch(() => {});
      await rm(tmpDir, { recursive: true, force: true });
    },
  };
  return harness;
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
