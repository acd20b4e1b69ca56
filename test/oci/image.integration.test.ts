/**
 * Model images end to end against a real registry (see registryFixture.ts for which one):
 * build → push → manifest by digest → pull → run the pulled server with the pulled onnxruntime.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { loadConfig } from '../../lib/config';
import { type BuiltImage, buildModelImage, pushImage } from '../../lib/image/modelImage';
import { buildRuntimeLayer, bundleServer } from '../../lib/image/runtimeLayer';
import { pullImage } from '../../lib/oci/pull';
import { getManifest, RegistryClient } from '../../lib/oci/registry';
import { readTar } from '../../lib/oci/tar';
import { tinyOnnxModel } from './fixtures/tinyOnnx';
import { freePort, type TestRegistry, uniqueRepository, useRegistry } from './registryFixture';

const run = promisify(execFile);
const TINY_ENTRY = path.join(__dirname, 'fixtures', 'tinyServer.ts');
const repoRoot = loadConfig().repoRoot;

let registry: TestRegistry;
let work: string;
let runtime: { entry: string; cacheDir: string };
const repository = uniqueRepository('model');
const models: Record<string, string> = {};

async function runPulledServer(rootfs: string): Promise<{ ortFrom: string; results: Record<string, number[]> }> {
  const { stdout } = await run(process.execPath, [path.join(rootfs, 'app', 'server.js')], {
    env: { PATH: process.env.PATH, FERRY_MODEL_DIR: path.join(rootfs, 'models'), PORT: '8000' },
  });
  return JSON.parse(stdout);
}

async function layerPaths(blobPath: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of readTar(createReadStream(blobPath).pipe(createGunzip()))) names.push(entry.path);
  return names;
}

before(async () => {
  registry = await useRegistry();
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-image-test-'));
  runtime = { entry: TINY_ENTRY, cacheDir: path.join(work, 'cache') };
  for (const [name, op, n] of [
    ['add3', 'Add', 3],
    ['mul3', 'Mul', 3],
    ['add5', 'Add', 5],
  ] as const) {
    models[name] = path.join(work, `${name}.onnx`);
    await writeFile(models[name]!, tinyOnnxModel(op, n));
  }
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('runtime layer', () => {
  it('holds node, its libraries and only the linux/x64 onnxruntime files; the second build comes from the cache', async (t) => {
    const built = await buildRuntimeLayer(runtime);
    t.diagnostic(
      `runtime layer: ${(built.uncompressedSize / 1e6).toFixed(1)} MB, ${(built.size / 1e6).toFixed(1)} MB gzip, built in ${built.buildMs.toFixed(0)} ms`,
    );
    assert.equal(built.fromCache, false);
    const names = await layerPaths(built.blobPath);
    for (const required of [
      'usr/bin/node',
      'lib64/ld-linux-x86-64.so.2',
      'lib/x86_64-linux-gnu/libc.so.6',
      'lib/x86_64-linux-gnu/libstdc++.so.6',
      'etc/passwd',
      'etc/ssl/certs/ca-certificates.crt',
      'tmp/',
      'app/node_modules/onnxruntime-node/package.json',
      'app/node_modules/onnxruntime-node/dist/index.js',
      'app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      'app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'app/node_modules/onnxruntime-common/package.json',
      'app/node_modules/onnxruntime-common/dist/cjs/index.js',
    ]) {
      assert.ok(names.includes(required), `layer has ${required}`);
    }
    assert.ok(!names.includes('app/server.js'), 'the server bundle is a layer of its own');
    const unwanted = names.filter((n) =>
      /darwin|win32|arm64|aarch64|\.map$|\.d\.ts$|\/script\/|\/lib\/.*\.ts$/.test(n),
    );
    assert.deepEqual(unwanted, []);

    const again = await buildRuntimeLayer(runtime);
    t.diagnostic(`cached runtime layer lookup: ${again.buildMs.toFixed(0)} ms`);
    assert.equal(again.fromCache, true);
    assert.equal(again.digest, built.digest);
    assert.ok(again.buildMs < built.buildMs, 'the cache hit is faster than the build');
  });
});

describe('model images against the registry', () => {
  let first: BuiltImage;

  it('builds reproducibly: same models → same image digest', async () => {
    first = await buildModelImage({
      models: [{ name: 'tiny', version: '1', onnxPath: models.add3! }],
      runtime,
      blobDir: path.join(work, 'blobs-a'),
    });
    const again = await buildModelImage({
      models: [{ name: 'tiny', version: '1', onnxPath: models.add3! }],
      runtime,
      blobDir: path.join(work, 'blobs-b'),
    });
    assert.equal(again.digest, first.digest);
    assert.equal(first.layers.length, 4, 'runtime, server, model, configuration');
    const { config } = first;
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.config.Entrypoint, ['/usr/bin/node', '/app/server.js']);
    assert.deepEqual(config.config.Env, ['PATH=/usr/bin:/bin', 'FERRY_MODEL_DIR=/models', 'PORT=8000', 'HOST=0.0.0.0']);
    assert.equal(config.config.User, '65532:65532');
    assert.equal(config.config.WorkingDir, '/app');
    assert.deepEqual(config.config.ExposedPorts, { '8000/tcp': {} });
    assert.equal(config.config.Labels?.['org.opencontainers.image.title'], 'tiny');
    assert.equal(config.config.Labels?.['ai.ferry.models'], 'tiny:1');
    assert.deepEqual(
      config.rootfs.diff_ids,
      first.layers.map((l) => l.diffId),
    );
  });

  it('pushes, serves the manifest by digest, and pulls a rootfs whose server runs the model', async (t) => {
    const started = performance.now();
    const pushed = await pushImage(first, registry.url, repository, 'v1');
    t.diagnostic(
      `first push: ${(pushed.pushedBytes / 1e6).toFixed(1)} MB in ${(performance.now() - started).toFixed(0)} ms`,
    );
    assert.equal(pushed.digest, first.digest);
    assert.equal(pushed.pushedBytes + pushed.skippedBytes + pushed.mountedBytes, pushed.sizeBytes);

    const manifest = await getManifest(registry.url, repository, pushed.digest);
    assert.deepEqual(
      manifest.layers.map((l) => l.digest),
      first.layers.map((l) => l.digest),
    );
    assert.equal(manifest.config.digest, first.configDigest);
    const byTag = await new RegistryClient(registry.url).getManifest(repository, 'v1');
    assert.equal(byTag.digest, first.digest);

    const dest = path.join(work, 'pull');
    const pulled = await pullImage({ registry: registry.url, repository, reference: 'v1' }, dest);
    assert.equal(pulled.digest, first.digest);
    assert.deepEqual(pulled.config, first.config);
    const rootfs = pulled.rootfs;
    assert.deepEqual(await readFile(path.join(rootfs, 'models/tiny/model.onnx')), await readFile(models.add3!));
    assert.deepEqual(await readFile(path.join(rootfs, 'app/server.js')), await bundleServer(TINY_ENTRY, repoRoot));
    const so = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1';
    assert.deepEqual(await readFile(path.join(rootfs, 'app', so)), await readFile(path.join(repoRoot, so)));
    assert.deepEqual(JSON.parse(await readFile(path.join(rootfs, 'models/ferry-models.json'), 'utf8')), {
      models: [{ name: 'tiny', version: '1', path: 'tiny/model.onnx' }],
    });

    const output = await runPulledServer(rootfs);
    assert.ok(output.ortFrom.startsWith(rootfs), `onnxruntime loaded from the image (${output.ortFrom})`);
    assert.deepEqual(output.results, { tiny: [2, 4, 6] });

    // Idempotent: a second pull (by tag or by digest) leaves the unpacked tree alone.
    await writeFile(path.join(rootfs, 'sentinel'), 'still here');
    for (const reference of ['v1', pushed.digest]) {
      const again = await pullImage({ registry: registry.url, repository, reference }, dest);
      assert.equal(again.digest, first.digest);
    }
    assert.equal(await readFile(path.join(rootfs, 'sentinel'), 'utf8'), 'still here');
  });

  it('a new model version re-pushes only its model and configuration layers and the config, and replaces the pulled rootfs', async () => {
    const second = await buildModelImage({
      models: [{ name: 'tiny', version: '2', onnxPath: models.mul3! }],
      runtime,
      blobDir: path.join(work, 'blobs-a'),
    });
    assert.equal(second.layers[0]!.digest, first.layers[0]!.digest, 'same runtime layer');
    assert.equal(second.layers[1]!.digest, first.layers[1]!.digest, 'same server layer');
    // No mount table: an earlier run's repository holding the same tiny model would make it a mount.
    const pushed = await pushImage(second, registry.url, repository, 'v2', { blobLocations: null });
    const unchanged = second.layers[0]!.size + second.layers[1]!.size;
    assert.equal(pushed.skippedBytes, unchanged, 'runtime and server layers skipped');
    assert.equal(pushed.pushedBytes, second.sizeBytes - unchanged);
    assert.ok(pushed.pushedBytes < pushed.sizeBytes / 100, `pushed ${pushed.pushedBytes} of ${pushed.sizeBytes} bytes`);

    const dest = path.join(work, 'pull');
    const pulled = await pullImage({ registry: registry.url, repository, reference: 'v2' }, dest);
    assert.equal(pulled.digest, second.digest);
    assert.deepEqual((await runPulledServer(pulled.rootfs)).results, { tiny: [1, 4, 9] });
    await assert.rejects(stat(path.join(pulled.rootfs, 'sentinel')), 'the old tree is gone');
    assert.deepEqual((await readdir(dest)).sort(), ['ferry-pull.json', 'rootfs'], 'no temporary directories left');
  });

  it('serves several models from one image, one layer per model plus the configuration', async () => {
    const image = await buildModelImage({
      models: [
        { name: 'adder', version: '7', onnxPath: models.add5!, sessionOptions: { intraOpNumThreads: 1 } },
        { name: 'squarer', version: '3', onnxPath: models.mul3! },
      ],
      labels: { team: 'search' },
      runtime,
      blobDir: path.join(work, 'blobs-a'),
    });
    assert.equal(image.layers.length, 5);
    assert.equal(image.config.config.Labels?.['ai.ferry.models'], 'adder:7,squarer:3');
    assert.equal(image.config.config.Labels?.team, 'search');
    const pushed = await pushImage(image, registry.url, repository, 'multi');
    assert.equal(pushed.skippedBytes >= image.layers[0]!.size, true);
    const pulled = await pullImage(
      { registry: registry.url, repository, reference: pushed.digest },
      path.join(work, 'pull-multi'),
    );
    const index = JSON.parse(await readFile(path.join(pulled.rootfs, 'models/ferry-models.json'), 'utf8'));
    assert.deepEqual(index.models, [
      { name: 'adder', version: '7', path: 'adder/model.onnx', sessionOptions: { intraOpNumThreads: 1 } },
      { name: 'squarer', version: '3', path: 'squarer/model.onnx' },
    ]);
    assert.deepEqual((await runPulledServer(pulled.rootfs)).results, { adder: [2, 4, 6, 8, 10], squarer: [1, 4, 9] });
  });

  it('refuses model names that are not a safe directory name', async () => {
    await assert.rejects(
      buildModelImage({ models: [{ name: '../x', version: '1', onnxPath: models.add3! }], runtime }),
      /cannot be a directory/,
    );
    await assert.rejects(
      buildModelImage({
        models: [
          { name: 'a', version: '1', onnxPath: models.add3! },
          { name: 'a', version: '2', onnxPath: models.add3! },
        ],
        runtime,
      }),
      /twice/,
    );
  });

  const realEntry = path.join(repoRoot, 'runtime', 'server', 'main.ts');
  it('the real inference server (runtime/server/main.ts) answers an infer request from the pulled rootfs', {
    skip: !existsSync(realEntry) && 'runtime/server/main.ts not written yet',
  }, async (t) => {
    const image = await buildModelImage({
      models: [{ name: 'tiny', version: '1', onnxPath: models.add3! }],
      runtime: { cacheDir: runtime.cacheDir },
      blobDir: path.join(work, 'blobs-a'),
    });
    const started = performance.now();
    const pushed = await pushImage(image, registry.url, repository, 'real-server');
    t.diagnostic(
      `push of the real-server image: ${(pushed.pushedBytes / 1e6).toFixed(1)} MB sent, ${(pushed.skippedBytes / 1e6).toFixed(1)} MB skipped, ${(performance.now() - started).toFixed(0)} ms`,
    );
    const { rootfs } = await pullImage(
      { registry: registry.url, repository, reference: pushed.digest },
      path.join(work, 'pull-real'),
    );
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(rootfs, 'app', 'server.js')], {
      env: { PATH: process.env.PATH, FERRY_MODEL_DIR: path.join(rootfs, 'models'), PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ready = await fetch(`${base}/v2/health/ready`).then(
          (r) => r.ok,
          () => false,
        );
        if (ready) break;
        if (child.exitCode !== null || Date.now() > deadline)
          assert.fail(`server from the image did not become ready: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const res = await fetch(`${base}/v2/models/tiny/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
      assert.deepEqual(body.outputs.find((o) => o.name === 'y')?.data, [2, 4, 6]);
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});
