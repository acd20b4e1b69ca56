/**
 * A multi-platform model image end to end, against a real registry: build the OCI index (linux/amd64 +
 * linux/arm64), push it, pull each platform, and run each one as a container would:
 *
 *   amd64  under runc, as the image's user 65532, read-only root: the image's own /usr/bin/node and C
 *          libraries, nothing of the host's
 *   arm64  under qemu-user (qemu-aarch64-static -L <rootfs>), the unpacked image as its sysroot
 *
 * Both must answer an inference request with what onnxruntime computes on the host (float tolerance).
 * Then a second model pushed into a new repository: its runtime and server layers are mounted from the
 * first repository, so only the model's own layers travel.
 *
 * The runc bundle writer below is local to this test; it should switch to lib/container's once that lands.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { type BuiltImageIndex, buildModelImageIndex, pushImage } from '../../lib/image/modelImage';
import { ensurePlatformInputs, imagePlatform } from '../../lib/image/platforms';
import { BlobLocations } from '../../lib/oci/blobLocations';
import { OCI_INDEX_MEDIA_TYPE, type OciImageConfig, type OciIndex } from '../../lib/oci/image';
import { pullImage } from '../../lib/oci/pull';
import { authHeaders, freePort, type TestRegistry, uniqueRepository, useRegistry } from '../oci/registryFixture';
import { mlpModel } from '../runtime/onnxTestModels';

const run = promisify(execFile);
const MODEL = mlpModel({ inputDim: 4, hiddenDims: [16, 8], outputDim: 3, seed: 7 });
const SECOND_MODEL = mlpModel({ inputDim: 4, hiddenDims: [16, 8], outputDim: 3, seed: 8 });
const INPUT = [0.5, -1, 0.25, 2, 1.5, 0.75, -0.5, -2];
const TOLERANCE = 1e-5;

let registry: TestRegistry;
let work: string;
let image: BuiltImageIndex;
let expected: number[];
const repository = uniqueRepository('multiarch');
const locations = new BlobLocations(null); // this test's own memory of where blobs are: no other run's

async function hostOutput(bytes: Uint8Array): Promise<number[]> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(INPUT), [2, 4]) });
  await session.release();
  return Array.from(out.output!.data as Float32Array);
}

function assertClose(actual: number[], wanted: number[], what: string): void {
  assert.equal(actual.length, wanted.length, `${what}: ${actual.length} values, expected ${wanted.length}`);
  for (const [i, v] of actual.entries()) {
    assert.ok(Math.abs(v - wanted[i]!) <= TOLERANCE, `${what}[${i}] = ${v}, onnxruntime on the host says ${wanted[i]}`);
  }
}

/** Waits for /v2/health/ready, then asks for one inference. */
async function inferFrom(port: number, child: ChildProcess, output: () => string, timeoutMs: number) {
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await fetch(`${base}/v2/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      assert.fail(`the server did not become ready: ${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const res = await fetch(`${base}/v2/models/mlp/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: INPUT }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
  return body.outputs.find((o) => o.name === 'output')!.data;
}

function capture(child: ChildProcess): () => string {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return () => text.slice(-2000);
}

/**
 * A minimal OCI runtime bundle for `rootfs`: the image config's process, user and working dir, a
 * read-only root, its own pid/ipc/uts/mount namespaces and the host's network (so the test reaches the port).
 */
async function writeRuncBundle(dir: string, rootfs: string, config: OciImageConfig, env: Record<string, string>) {
  const [uid, gid] = (config.config.User ?? '0:0').split(':').map(Number);
  const imageEnv = (config.config.Env ?? []).filter((e) => !(e.split('=')[0]! in env));
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid, gid },
      args: [...(config.config.Entrypoint ?? []), ...(config.config.Cmd ?? [])],
      env: [...imageEnv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)],
      cwd: config.config.WorkingDir ?? '/',
      noNewPrivileges: true,
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
    },
    root: { path: rootfs, readonly: true },
    hostname: 'ferry',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
}

/**
 * What an arm64 kernel shows in /proc/cpuinfo, one Neoverse-N1 entry per host CPU, placed in the qemu
 * prefix (qemu -L looks a guest's absolute paths up there first). qemu-user 7.2 passes the x86 host's
 * /proc/cpuinfo through to an aarch64 guest, and onnxruntime's CPU detection (cpuinfo) finds no ARM
 * processor in it and dereferences NULL while loading. It goes into the test's unpacked copy only.
 */
async function writeEmulatedArm64CpuInfo(rootfs: string): Promise<void> {
  const possible = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim(); // e.g. "0-1"
  const [first, last] = possible.split('-').map(Number);
  const entries: string[] = [];
  for (let cpu = first!; cpu <= (last ?? first!); cpu++) {
    entries.push(
      [
        `processor\t: ${cpu}`,
        'BogoMIPS\t: 243.75',
        'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp',
        'CPU implementer\t: 0x41',
        'CPU architecture: 8',
        'CPU variant\t: 0x3',
        'CPU part\t: 0xd0c',
        'CPU revision\t: 1',
        '',
      ].join('\n'),
    );
  }
  await mkdir(path.join(rootfs, 'proc'), { recursive: true });
  await writeFile(path.join(rootfs, 'proc', 'cpuinfo'), `${entries.join('\n')}\n`);
}

async function stop(child: ChildProcess, kill: () => Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  await kill().catch(() => child.kill('SIGKILL'));
  await exited;
}

before(async () => {
  await ensurePlatformInputs(imagePlatform('amd64'));
  await ensurePlatformInputs(imagePlatform('arm64'));
  registry = await useRegistry();
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-multiarch-test-'));
  await writeFile(path.join(work, 'mlp.onnx'), MODEL);
  await writeFile(path.join(work, 'mlp2.onnx'), SECOND_MODEL);
  expected = await hostOutput(MODEL);
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('multi-platform model image', { timeout: 600_000 }, () => {
  it('pushes an OCI index with linux/amd64 and linux/arm64 manifests', async (t) => {
    image = await buildModelImageIndex({
      models: [{ name: 'mlp', version: '1', onnxPath: path.join(work, 'mlp.onnx') }],
      blobDir: path.join(work, 'blobs'),
    });
    const pushed = await pushImage(image, registry.url, repository, 'v1', { blobLocations: locations });
    assert.equal(pushed.digest, image.digest);
    for (const one of image.images) {
      const runtime = one.layers[0]!;
      t.diagnostic(
        `${one.config.architecture}: runtime layer ${(runtime.uncompressedSize / 1e6).toFixed(1)} MB, ${(runtime.size / 1e6).toFixed(1)} MB gzip`,
      );
    }
    const res = await fetch(`${registry.url}/v2/${repository}/manifests/v1`, {
      headers: { ...authHeaders(registry), Accept: OCI_INDEX_MEDIA_TYPE },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), image.digest);
    const index = (await res.json()) as OciIndex;
    assert.equal(index.mediaType, OCI_INDEX_MEDIA_TYPE);
    assert.deepEqual(
      index.manifests.map((m) => [m.platform?.os, m.platform?.architecture, m.digest]),
      image.images.map((i) => ['linux', i.config.architecture, i.digest]),
    );
    assert.deepEqual(
      pushed.platforms?.map((p) => p.architecture),
      ['amd64', 'arm64'],
    );
  });

  it('amd64: runs under runc as user 65532 with the image’s own node and libraries, and infers', async () => {
    const pulled = await pullImage(
      { registry: registry.url, repository, reference: image.digest },
      path.join(work, 'pull-amd64'),
      { architecture: 'amd64' },
    );
    assert.equal(pulled.config.architecture, 'amd64');
    assert.equal(pulled.config.config.User, '65532:65532');
    const bundle = path.join(work, 'bundle-amd64');
    const port = await freePort();
    await writeRuncBundle(bundle, pulled.rootfs, pulled.config, { PORT: String(port), HOST: '127.0.0.1' });
    const id = `ferry-test-${process.pid}-${Date.now().toString(36)}`;
    const child = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = capture(child);
    try {
      assertClose(await inferFrom(port, child, output, 60_000), expected, 'amd64 under runc');
      const state = JSON.parse((await run('runc', ['state', id])).stdout) as { pid: number; status: string };
      assert.equal(state.status, 'running');
      const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
      assert.match(status, /^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
      const exe = statSync(`/proc/${state.pid}/exe`);
      const imageNode = statSync(path.join(pulled.rootfs, 'usr/bin/node'));
      assert.deepEqual([exe.dev, exe.ino], [imageNode.dev, imageNode.ino], 'the process is the image’s node');
      const maps = readFileSync(`/proc/${state.pid}/maps`, 'utf8');
      for (const lib of ['libc.so.6', 'libstdc++.so.6', 'ld-linux-x86-64.so.2']) {
        assert.match(maps, new RegExp(`/lib/x86_64-linux-gnu/${lib.replace(/[.+]/g, '\\$&')}\\n`), `maps has ${lib}`);
      }
      // The host's libraries are in /usr/lib/x86_64-linux-gnu (its /lib is a symlink); the image has no /usr/lib.
      assert.doesNotMatch(maps, /\/usr\/lib\//, 'nothing of the host’s libraries');
    } finally {
      await stop(child, () => run('runc', ['kill', id, 'TERM']));
      await run('runc', ['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('arm64: runs under qemu-user with the unpacked image as its sysroot, and infers the same', async () => {
    const pulled = await pullImage(
      { registry: registry.url, repository, reference: image.digest },
      path.join(work, 'pull-arm64'),
      { architecture: 'arm64' },
    );
    assert.equal(pulled.config.architecture, 'arm64');
    const rootfs = pulled.rootfs;
    await writeEmulatedArm64CpuInfo(rootfs);
    const [node, script] = pulled.config.config.Entrypoint!;
    const port = await freePort();
    const child = spawn('qemu-aarch64-static', ['-L', rootfs, path.join(rootfs, node!), path.join(rootfs, script!)], {
      env: { FERRY_MODEL_DIR: path.join(rootfs, 'models'), PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = capture(child);
    try {
      assertClose(await inferFrom(port, child, output, 240_000), expected, 'arm64 under qemu');
      const maps = readFileSync(`/proc/${child.pid}/maps`, 'utf8');
      assert.ok(
        maps.includes(`${rootfs}/app/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1`),
        'the arm64 onnxruntime of the image is loaded',
      );
      assert.ok(maps.includes(`${rootfs}/lib/aarch64-linux-gnu/libc.so.6`), 'the arm64 libc of the image is loaded');
    } finally {
      await stop(child, async () => child.kill('SIGTERM'));
    }
  });

  it('a second model in a new repository moves only its own layers: runtime and server are mounted', async (t) => {
    const second = await buildModelImageIndex({
      models: [{ name: 'mlp2', version: '1', onnxPath: path.join(work, 'mlp2.onnx') }],
      blobDir: path.join(work, 'blobs'),
    });
    const pushed = await pushImage(second, registry.url, uniqueRepository('multiarch-second'), 'v1', {
      blobLocations: locations,
    });
    const [amd64, arm64] = second.images;
    const shared = amd64!.layers[0]!.size + arm64!.layers[0]!.size + amd64!.layers[1]!.size;
    const own =
      amd64!.layers[2]!.size +
      amd64!.layers[3]!.size +
      Buffer.byteLength(amd64!.configJson) +
      Buffer.byteLength(arm64!.configJson);
    t.diagnostic(`second model, new repository: ${pushed.pushedBytes} bytes pushed, ${pushed.mountedBytes} mounted`);
    assert.equal(pushed.mountedBytes, shared);
    assert.equal(pushed.pushedBytes, own);
    assert.equal(pushed.skippedBytes, 0);
  });
});
