/**
 * Graceful shutdown: an in-flight request finishes after close() / SIGTERM, new connections are refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startInferenceServer } from '../../runtime/server/inferenceServer';
import { mlpModel, writeModelDir } from './onnxTestModels';

const repoRoot = path.resolve(__dirname, '../..');
let dir: string;
const mlp = mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3 });

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-shutdown-'));
  // 'slow': batches wait up to 20 s for mates, so requests sit in its queue until close() flushes them.
  await writeModelDir(dir, [
    { name: 'mlp', version: '1', bytes: mlp },
    { name: 'slow', version: '1', bytes: mlp, batching: { maxBatchSize: 64, maxQueueDelayMs: 20_000 } },
  ]);
});
after(() => rm(dir, { recursive: true, force: true }));

const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });

/** Starts an infer request that sends only half its body until `finish()` is called. */
function slowInfer(baseUrl: string): { finish(): void; response: Promise<{ status: number; json: any }> } {
  const url = new URL(`${baseUrl}/v2/models/mlp/infer`);
  const req = http.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const half = Math.floor(body.length / 2);
  req.write(body.slice(0, half));
  req.flushHeaders();
  const response = new Promise<{ status: number; json: any }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
    });
  });
  return { finish: () => req.end(body.slice(half)), response };
}

test('close() lets an in-flight request finish and refuses new connections', async () => {
  const server = await startInferenceServer({ modelDir: dir, port: 0 });
  const inflight = slowInfer(server.url);
  await sleep(100); // the request has reached the server
  let closed = false;
  const closing = server.close().then(() => (closed = true));
  await sleep(100);
  assert.equal(closed, false, 'close() must wait for the in-flight request');
  await assert.rejects(fetch(`${server.url}/v2/health/live`), 'new connections are refused while draining');
  inflight.finish();
  const res = await inflight.response;
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.outputs[0].shape, [1, 3]);
  await closing;
  assert.equal(closed, true);
});

test('close() runs the batches still waiting in the queue instead of waiting out their delay', async () => {
  const server = await startInferenceServer({ modelDir: dir, port: 0 });
  const send = (x: number) =>
    fetch(`${server.url}/v2/models/slow/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [x, 2, 3, 4] }] }),
    }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
  const answers = Promise.all([1, 2, 3].map(send));
  await sleep(300);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(
    metrics,
    /^ferry_inference_in_flight\{model="slow",version="1"\} 3$/m,
    'three requests wait in the queue',
  );
  assert.match(metrics, /^ferry_inference_executions_total\{model="slow",version="1"\} 0$/m);
  const t0 = Date.now();
  await server.close();
  const results = await answers;
  assert.ok(Date.now() - t0 < 5_000, `close() took ${Date.now() - t0} ms`);
  assert.deepEqual(
    results.map((r) => r.status),
    [200, 200, 200],
  );
  assert.deepEqual(
    results.map((r) => r.json.outputs[0].shape),
    [
      [1, 3],
      [1, 3],
      [1, 3],
    ],
  );
  assert.notDeepEqual(results[0].json.outputs[0].data, results[1].json.outputs[0].data, 'each got its own row');
});

test('main.ts: SIGTERM drains an in-flight request, then the process exits 0', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/server/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, FERRY_MODEL_DIR: dir, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not become ready:\n${output}`)), 30_000);
      child.stdout.on('data', () => {
        const m = /ready at (http:\/\/[^\s]+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
    });
    assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
    assert.equal((await fetch(`${url}/v2/models/mlp/infer`, { method: 'POST', body })).status, 200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      metrics,
      /target_info\{.*service_name="ferry-inference-server"/,
      'metrics go through the OpenTelemetry Node SDK',
    );
    assert.match(metrics, /^ferry_inference_request_duration_seconds_count\{model="mlp",version="1"\} 1$/m);
    assert.match(metrics, /^ferry_inference_compute_duration_seconds_count\{model="mlp",version="1"\} 1$/m);
    assert.match(metrics, /^ferry_inference_cold_start_duration_seconds_count\{model="slow",version="1"\} 1$/m);

    const inflight = slowInfer(url);
    await sleep(100);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await sleep(200);
    assert.equal(child.exitCode, null, 'the server waits for the in-flight request');
    inflight.finish();
    assert.equal((await inflight.response).status, 200);
    const [code] = await exited;
    assert.equal(code, 0, output);
    assert.match(output, /SIGTERM: draining/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
