/**
 * `ferry image build | inspect | run` as a user runs them: two models built into an OCI image layout and
 * pushed to the stack's registry, inspected, and run — from the layout as a plain process and from the
 * registry as a container — each answering a real inference; and the bad input each refuses in one line.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { locateBinary, RUNTIME_NAMES } from '../../lib/container/containerRuntime';
import { tinyOnnxModel } from '../oci/fixtures/tinyOnnx';
import { freePort, type TestRegistry, uniqueRepository, useRegistry } from '../oci/registryFixture';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');

let work: string;
let registry: TestRegistry;
let square: string;
let double: string;

before(async () => {
  registry = await useRegistry();
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-image-cli-'));
  square = path.join(work, 'square.onnx');
  double = path.join(work, 'double.onnx');
  await writeFile(square, tinyOnnxModel('Mul', 3));
  await writeFile(double, tinyOnnxModel('Add', 3));
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(ferryBin, args, {
      env: { ...process.env, FERRY_REGISTRY_URL: registry.url, ...env },
      timeout: 240_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

/** `ferry image run ...` until it says it serves; stopped with SIGINT by the returned function. */
async function serve(args: string[]): Promise<{ url: string; output: () => string; stop: () => Promise<number> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(ferryBin, ['image', 'run', ...args, '--port', String(port)], {
    env: { ...process.env, FERRY_REGISTRY_URL: registry.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  const deadline = Date.now() + 120_000;
  while (!out.includes('Serving ')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ferry image run did not come up:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

async function infer(url: string, model: string): Promise<number[]> {
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data;
}

async function containerRuntimeInstalled(): Promise<boolean> {
  for (const name of RUNTIME_NAMES) {
    if (
      await locateBinary(name).then(
        () => true,
        () => false,
      )
    )
      return locateBinary('conmon').then(
        () => true,
        () => false,
      );
  }
  return false;
}

describe('ferry image', () => {
  let layout: string;
  const repository = uniqueRepository('cli-image');

  it('build --out writes an OCI image layout of both models, with a line per layer', async () => {
    layout = path.join(work, 'layout');
    const built = await ferry(['image', 'build', square, double, '--platform', 'linux/amd64', '--out', layout]);
    assert.equal(built.code, 0, built.out);
    assert.match(built.out, /layer\s+runtime linux\/amd64/);
    assert.match(built.out, /layer\s+model square:sha-[0-9a-f]{12}/);
    assert.match(built.out, /layer\s+model double:sha-[0-9a-f]{12}/);
    assert.match(built.out, /Wrote the OCI image layout/);
    assert.deepEqual((await readdir(layout)).sort(), ['blobs', 'index.json', 'oci-layout']);
  });

  it('inspect DIR --json: the platform, each layer and what it holds, the models', async () => {
    const inspected = await ferry(['image', 'inspect', layout, '--json']);
    assert.equal(inspected.code, 0, inspected.out);
    const d = JSON.parse(inspected.out);
    assert.deepEqual(
      d.models.map((m: { name: string }) => m.name),
      ['square', 'double'],
    );
    assert.deepEqual(
      d.platforms.map((p: { platform: string }) => p.platform),
      ['linux/amd64'],
    );
    assert.deepEqual(
      d.platforms[0].layers.map((l: { role: string; model?: { name: string } }) => l.model?.name ?? l.role),
      ['runtime', 'server', 'square', 'double', 'configuration'],
    );
    for (const l of d.platforms[0].layers) assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const text = await ferry(['image', 'inspect', layout]);
    assert.match(text.out, /models: square \(version sha-[0-9a-f]{12}\), double/);
  });

  it('run DIR --runtime process serves a real inference until Ctrl-C', async () => {
    const server = await serve([layout, '--runtime', 'process']);
    assert.deepEqual(await infer(server.url, 'square'), [1, 4, 9]);
    assert.deepEqual(await infer(server.url, 'double'), [2, 4, 6]);
    assert.equal(await server.stop(), 0, server.output());
    assert.match(server.output(), /SIGINT: stopping the server/);
  });

  it('build --push to the registry, inspect REF, run REF as a container', async (t) => {
    const ref = `${new URL(registry.url).host}/${repository}:v1`;
    const pushed = await ferry(['image', 'build', square, '--platform', 'linux/amd64', '--push', ref]);
    assert.equal(pushed.code, 0, pushed.out);
    assert.match(pushed.out, /(pushed|mounted|exists)\s+runtime linux\/amd64/);
    // An earlier run may have left the same blobs in another repository: then they are mounted.
    assert.match(pushed.out, /(pushed|mounted)\s+model square/);
    assert.match(pushed.out, new RegExp(`Pushed ${ref.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}`));

    const inspected = await ferry(['image', 'inspect', ref, '--json']);
    assert.equal(inspected.code, 0, inspected.out);
    assert.deepEqual(
      JSON.parse(inspected.out).models.map((m: { name: string }) => m.name),
      ['square'],
    );

    if (!(await containerRuntimeInstalled())) {
      t.skip('no container runtime installed (bash infra/install-container-runtime.sh)');
      return;
    }
    const server = await serve([ref, '--memory', '256Mi', '--cpus', '1']);
    assert.match(server.output(), /container ferry-[0-9a-f]+ under (youki|runc)/);
    assert.deepEqual(await infer(server.url, 'square'), [1, 4, 9]);
    assert.equal(await server.stop(), 0, server.output());
  });
});

describe('ferry image: bad input, one line and exit 1 each', () => {
  const refused = (out: string, pattern: RegExp) => {
    const lines = out.trim().split('\n');
    assert.match(lines.at(-1)!, pattern, out);
    assert.match(lines.at(-1)!, /^ferry: /, out);
  };

  it('an unknown platform, an unreadable model, a file that is no model', async () => {
    const bad = await ferry(['image', 'build', square, '--platform', 'linux/riscv64', '--out', path.join(work, 'x')]);
    assert.equal(bad.code, 1);
    refused(bad.out, /unknown platform "linux\/riscv64"/);
    const missing = await ferry(['image', 'build', path.join(work, 'nope.onnx'), '--out', path.join(work, 'x')]);
    assert.equal(missing.code, 1);
    refused(missing.out, /cannot read model .*nope\.onnx: no such file/);
    const notOnnx = path.join(work, 'notes.onnx');
    await writeFile(notOnnx, 'not a model');
    const garbage = await ferry(['image', 'build', notOnnx, '--out', path.join(work, 'x')]);
    assert.equal(garbage.code, 1);
    refused(garbage.out, /notes\.onnx is not a usable ONNX model/);
  });

  it('a registry that refuses the connection: before anything is built', async () => {
    const port = await freePort();
    const down = await ferry([
      'image',
      'build',
      square,
      '--platform',
      'linux/amd64',
      '--push',
      `127.0.0.1:${port}/x/y:v1`,
    ]);
    assert.equal(down.code, 1);
    refused(down.out, new RegExp(`registry http://127\\.0\\.0\\.1:${port}: .*connection refused`));
    assert.doesNotMatch(down.out, /Built /);
  });

  it('a runtime that is not installed, an unknown runtime', async () => {
    const noYouki = await ferry(['image', 'run', path.join(work, 'layout'), '--port', '1', '--runtime', 'youki'], {
      FERRY_CACHE_DIR: path.join(work, 'empty-cache'),
      FERRY_YOUKI_BIN: '',
      PATH: '/usr/bin:/bin',
    });
    assert.equal(noYouki.code, 1);
    refused(noYouki.out, /youki is not installed: run `bash infra\/install-container-runtime\.sh`.*--runtime process/);
    const unknown = await ferry(['image', 'run', path.join(work, 'layout'), '--port', '1', '--runtime', 'docker']);
    assert.equal(unknown.code, 1);
    refused(unknown.out, /unknown runtime "docker"/);
  });

  it('an image for another architecture', async () => {
    const arm = path.join(work, 'arm-layout');
    const built = await ferry(['image', 'build', square, '--platform', 'linux/arm64', '--out', arm]);
    assert.equal(built.code, 0, built.out);
    const port = await freePort();
    const wrong = await ferry(['image', 'run', arm, '--port', String(port), '--runtime', 'process']);
    assert.equal(wrong.code, 1);
    refused(wrong.out, /has no linux\/amd64 image \(it has linux\/arm64\); this machine runs linux\/amd64/);
  });
});
