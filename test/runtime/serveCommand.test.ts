/**
 * `ferry serve` as a user runs it: on .onnx files, and on a model manifest (with its session options
 * and batching), answering real inference over HTTP until SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../../lib/gateway/replicaProcess';
import { mlpModel, negateModel } from './onnxTestModels';

const repoRoot = path.resolve(__dirname, '../..');
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-serve-cmd-'));
  await writeFile(path.join(dir, 'Tiny MLP.onnx'), mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 4 }));
  await writeFile(path.join(dir, 'negate.onnx'), negateModel());
  await writeFile(
    path.join(dir, 'serving.json'),
    JSON.stringify({
      models: [
        {
          name: 'negate',
          version: '2',
          path: 'negate.onnx',
          sessionOptions: { intraOpNumThreads: 1 },
          batching: { maxBatchSize: 8, maxQueueDelayMs: 100 },
        },
      ],
    }),
  );
});
after(() => rm(dir, { recursive: true, force: true }));

async function serve(args: string[], body: (url: string) => Promise<void>): Promise<void> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'client/cli/main.ts', 'serve', ...args, '--port', String(port)],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ferry serve did not start:\n${output}`)), 30_000);
      child.stdout.on('data', () => {
        if (/^Serving /m.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`ferry serve exited with ${code}:\n${output}`)));
    });
    await body(`http://127.0.0.1:${port}`);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    assert.equal((await exited)[0], 0, output);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

test('ferry serve model.onnx serves each file under its name', async () => {
  await serve([path.join(dir, 'Tiny MLP.onnx'), path.join(dir, 'negate.onnx')], async (url) => {
    const res = await fetch(`${url}/v2/models/tiny-mlp/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as any).outputs[0].shape, [1, 3]);
    assert.equal((await fetch(`${url}/v2/models/negate/ready`)).status, 200);
  });
});

test('ferry serve manifest.json serves the manifest with its batching settings', async () => {
  await serve([path.join(dir, 'serving.json')], async (url) => {
    const answers = await Promise.all(
      [1, 2, 3].map((x) =>
        fetch(`${url}/v2/models/negate/versions/2/infer`, {
          method: 'POST',
          body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [x, -x] }] }),
        }).then((r) => r.json() as Promise<any>),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.outputs[0].data),
      [
        [-1, 1],
        [-2, 2],
        [-3, 3],
      ],
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const runs = Number(/^ferry_inference_executions_total\{model="negate",version="2"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(runs >= 1 && runs < 3, `three requests sent together were batched: ${runs} runs`);
  });
});

test('ferry serve --batch and --threads serve .onnx files with those settings', async () => {
  await serve(
    [path.join(dir, 'negate.onnx'), '--batch', '4', '--max-queue-delay', '50', '--threads', '1'],
    async (url) => {
      const config = (await (await fetch(`${url}/v2/models/negate/config`)).json()) as {
        batching: unknown;
        sessionOptions: unknown;
      };
      assert.deepEqual(config.batching, { maxBatchSize: 4, maxQueueDelayMs: 50 });
      assert.deepEqual(config.sessionOptions, { intraOpNumThreads: 1 });
    },
  );
});

test('ferry serve refuses a queue delay without batching, and --batch on a manifest', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'client/cli/main.ts', 'serve', ...args], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (c) => (output += c));
      child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
      child.once('exit', (code) => resolve({ code, output }));
    });
  const noBatch = await run([path.join(dir, 'negate.onnx'), '--max-queue-delay', '5']);
  assert.notEqual(noBatch.code, 0);
  assert.match(noBatch.output, /--max-queue-delay needs --batch N/);
  const manifest = await run([path.join(dir, 'serving.json'), '--batch', '4']);
  assert.notEqual(manifest.code, 0);
  assert.match(manifest.output, /--batch and --threads apply to \.onnx files/);
});
