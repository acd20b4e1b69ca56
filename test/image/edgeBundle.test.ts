/**
 * The edge image's server bundle: runtime/server/main.ts bundled without OpenTelemetry (noTelemetry.ts in
 * place of telemetry.ts). It carries no OpenTelemetry code, is a fraction of the inference bundle's size,
 * and serves the same answers; only /metrics is gone.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../lib/gateway/replicaProcess';
import { bundleServer } from '../../lib/image/runtimeLayer';
import { mlpModel, writeModelDir } from '../runtime/onnxTestModels';

const repoRoot = path.resolve(__dirname, '../..');
const MAIN = path.join(repoRoot, 'runtime/server/main.ts');
const REQUEST = {
  id: 'edge',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [0.5, -1, 0.25, 2, 1.5, 0.75, -0.5, -2] }],
};

let work: string;
let modelDir: string;
const children: ChildProcess[] = [];

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-edge-bundle-'));
  modelDir = await writeModelDir(path.join(work, 'models'), [
    { name: 'mlp', version: '1', bytes: mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 5 }) },
  ]);
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await rm(work, { recursive: true, force: true });
});

async function serve(bundle: Buffer, name: string): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, bundle);
  const port = await freePort();
  const child = spawn(process.execPath, [file], {
    env: {
      ...process.env,
      FERRY_MODEL_DIR: modelDir,
      PORT: String(port),
      NODE_PATH: path.join(repoRoot, 'node_modules'),
    },
    stdio: 'ignore',
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const ready = await fetch(`${url}/v2/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return url;
    assert.equal(child.exitCode, null, `${name} exited before it was ready`);
    await sleep(100);
  }
  throw new Error(`${name} was not ready in 30 s`);
}

test('bundled without telemetry: no OpenTelemetry, much smaller, same answers, no /metrics', {
  timeout: 120_000,
}, async () => {
  const full = await bundleServer(MAIN, repoRoot);
  const edge = await bundleServer(MAIN, repoRoot, { telemetry: false });
  assert.match(full.toString(), /@opentelemetry\/sdk-metrics/);
  assert.doesNotMatch(edge.toString(), /@opentelemetry|grpc-js|protobufjs/);
  assert.ok(edge.length * 5 < full.length, `edge bundle ${edge.length} B is not far below the full ${full.length} B`);
  // What the gateway looks for in a bundle is still there: it listens on FERRY_SOCKET and has the standby entry.
  assert.match(edge.toString(), /process\.env\.FERRY_SOCKET/);
  assert.match(edge.toString(), /ferry\.standbyEntry/);

  const [fullUrl, edgeUrl] = await Promise.all([serve(full, 'server.js'), serve(edge, 'edge-server.js')]);
  const infer = async (url: string) =>
    (await fetch(`${url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify(REQUEST) })).text();
  assert.equal(await infer(edgeUrl), await infer(fullUrl));
  assert.equal((await fetch(`${fullUrl}/metrics`)).status, 200);
  const metrics = await fetch(`${edgeUrl}/metrics`);
  assert.equal(metrics.status, 404);
  assert.match(((await metrics.json()) as { error: string }).error, /without metrics/);
});
