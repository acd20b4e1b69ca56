/**
 * A real Ferry model image (lib/image: node, its libraries and onnxruntime inside) pushed to a registry,
 * pulled, and run by lib/container under youki and under runc, each answering an inference request
 * through the Unix socket it listens on in its bind-mounted folder (FERRY_SOCKET), as onnxruntime on
 * the host computes it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { runContainer } from '../../lib/container/container';
import { findRuntime, RUNTIME_NAMES } from '../../lib/container/containerRuntime';
import { buildModelImage, pushImage } from '../../lib/image/modelImage';
import { ensurePlatformInputs, imagePlatform } from '../../lib/image/platforms';
import { type PulledImage, pullImage } from '../../lib/oci/pull';
import { type TestRegistry, uniqueRepository, useRegistry } from '../oci/registryFixture';
import { mlpModel } from '../runtime/onnxTestModels';

const MODEL = mlpModel({ inputDim: 4, hiddenDims: [16, 8], outputDim: 3, seed: 11 });
const INPUT = [0.5, -1, 0.25, 2, 1.5, 0.75, -0.5, -2];

function request(socketPath: string, method: string, urlPath: string, body?: unknown) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      { socketPath, method, path: urlPath, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

let work: string;
let registry: TestRegistry;
let pulled: PulledImage;
let expected: number[];

before(async () => {
  await ensurePlatformInputs(imagePlatform('amd64'));
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-container-image-'));
  await writeFile(path.join(work, 'mlp.onnx'), MODEL);
  const session = await ort.InferenceSession.create(MODEL);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(INPUT), [2, 4]) });
  expected = Array.from(out.output!.data as Float32Array);
  await session.release();
  registry = await useRegistry();
  const image = await buildModelImage({
    models: [{ name: 'mlp', version: '1', onnxPath: path.join(work, 'mlp.onnx') }],
    blobDir: path.join(work, 'blobs'),
  });
  const repository = uniqueRepository('container');
  await pushImage(image, registry.url, repository, 'v1');
  pulled = await pullImage({ registry: registry.url, repository, reference: image.digest }, path.join(work, 'pull'));
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a Ferry model image as a container', { timeout: 300_000 }, () => {
  for (const name of RUNTIME_NAMES) {
    test(`under ${name}: ready, then answers an inference through its socket`, async () => {
      const runtime = await findRuntime(name);
      const socketDir = await mkdtemp(path.join(work, `sock-${name}-`));
      const c = await runContainer({
        rootfs: pulled.rootfs,
        image: pulled.config.config,
        limits: { cpus: 1, memoryBytes: 512 << 20 },
        bindMounts: [{ hostPath: socketDir, containerPath: '/run/ferry', ownedByContainer: true }],
        env: { FERRY_SOCKET: '/run/ferry/replica.sock' },
        runtime,
        bundlesDir: path.join(work, 'bundles'),
      });
      try {
        const socket = path.join(socketDir, 'replica.sock');
        const deadline = Date.now() + 60_000;
        for (;;) {
          if (c.exit) assert.fail(`the container exited: ${c.exit.reason}`);
          if (existsSync(socket)) {
            const ready = await request(socket, 'GET', '/v2/health/ready').catch(() => ({ status: 0 }));
            if (ready.status === 200) break;
          }
          if (Date.now() > deadline) assert.fail('the server did not become ready in 60 s');
          await new Promise((r) => setTimeout(r, 50));
        }
        const res = await request(socket, 'POST', '/v2/models/mlp/infer', {
          inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: INPUT }],
        });
        assert.equal(res.status, 200, res.body);
        const output = (JSON.parse(res.body) as { outputs: Array<{ name: string; data: number[] }> }).outputs.find(
          (o) => o.name === 'output',
        )!.data;
        assert.equal(output.length, expected.length);
        for (const [i, v] of output.entries()) assert.ok(Math.abs(v - expected[i]!) <= 1e-5, `output[${i}] = ${v}`);
        assert.equal(c.runtime.name, name);
      } finally {
        const exit = await c.stop(5_000);
        await c.remove();
        assert.equal(exit.oomKilled, false, exit.reason);
      }
    });
  }
});
