/**
 * Container start → ready for a Ferry model image with a ~10 MB model (lib/onnx's exampleModelSpec):
 * youki vs runc (both through lib/container: bundle, conmon, create, start) vs a plain process (the
 * image's own node and server, no container), in the same run, variants interleaved round by round so
 * the machine's other load falls on all of them alike.
 *
 *   npx tsx bench/container-start.ts [--runs 7] [--size-mb 10]
 *
 * Ready = the server answers GET /v2/health/ready on the Unix socket in its bind-mounted folder
 * (polled every 5 ms); then one inference is timed. Needs the registry of the dev stack (or starts a
 * private one) and both runtimes (`bash infra/install-container-runtime.sh`).
 * Every figure is a median over --runs with (min–max): the machine is shared, read the spread.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { runContainer } from '../lib/container/container';
import { type ContainerRuntime, findRuntime } from '../lib/container/containerRuntime';
import { buildModelImage, pushImage } from '../lib/image/modelImage';
import { ensurePlatformInputs, imagePlatform } from '../lib/image/platforms';
import { type PulledImage, pullImage } from '../lib/oci/pull';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import { uniqueRepository, useRegistry } from '../test/oci/registryFixture';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
function spread(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${median(s).toFixed(0)} ms (${s[0]!.toFixed(0)}–${s[s.length - 1]!.toFixed(0)})`;
}

function request(socketPath: string, method: string, urlPath: string, body?: string) {
  return new Promise<number>((resolve, reject) => {
    const req = http.request(
      { socketPath, method, path: urlPath, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function untilReady(socket: string, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const why = failed();
    if (why) throw new Error(`exited before ready: ${why}`);
    if (existsSync(socket) && (await request(socket, 'GET', '/v2/health/ready').catch(() => 0)) === 200) return;
    if (Date.now() > deadline) throw new Error('not ready after 60 s');
    await sleep(5);
  }
}

interface Sample {
  ready: number;
  infer: number;
}

async function inContainer(runtime: ContainerRuntime, image: PulledImage, work: string, body: string, model: string) {
  const socketDir = await mkdtemp(path.join(work, `sock-${runtime.name}-`));
  const socket = path.join(socketDir, 'replica.sock');
  const t0 = performance.now();
  const c = await runContainer({
    rootfs: image.rootfs,
    image: image.config.config,
    limits: { cpus: 1, memoryBytes: 512 << 20 },
    bindMounts: [{ hostPath: socketDir, containerPath: '/run/ferry', ownedByContainer: true }],
    env: { FERRY_SOCKET: '/run/ferry/replica.sock' },
    runtime,
    bundlesDir: path.join(work, 'bundles'),
  });
  try {
    await untilReady(socket, () => c.exit?.reason);
    const ready = performance.now() - t0;
    const t1 = performance.now();
    const status = await request(socket, 'POST', `/v2/models/${model}/infer`, body);
    if (status !== 200) throw new Error(`inference answered ${status}`);
    return { ready, infer: performance.now() - t1 };
  } finally {
    await c.stop(5_000);
    await c.remove();
    await rm(socketDir, { recursive: true, force: true });
  }
}

/** The same image's node and server as a plain child process, reading the unpacked rootfs. */
async function plainProcess(image: PulledImage, work: string, body: string, model: string): Promise<Sample> {
  const socketDir = await mkdtemp(path.join(work, 'sock-plain-'));
  const socket = path.join(socketDir, 'replica.sock');
  const [node, script] = image.config.config.Entrypoint!;
  const t0 = performance.now();
  const child: ChildProcess = spawn(path.join(image.rootfs, node!), [path.join(image.rootfs, script!)], {
    cwd: path.join(image.rootfs, 'app'),
    env: { FERRY_MODEL_DIR: path.join(image.rootfs, 'models'), FERRY_SOCKET: socket },
    stdio: 'ignore',
  });
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `code ${code} signal ${signal}`));
  try {
    await untilReady(socket, () => exited);
    const ready = performance.now() - t0;
    const t1 = performance.now();
    const status = await request(socket, 'POST', `/v2/models/${model}/infer`, body);
    if (status !== 200) throw new Error(`inference answered ${status}`);
    return { ready, infer: performance.now() - t1 };
  } finally {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await rm(socketDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '7' }, 'size-mb': { type: 'string', default: '10' } },
  });
  const runs = Number(values.runs);
  const spec = exampleModelSpec(Number(values['size-mb']));
  const work = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-container-'));
  const registry = await useRegistry();
  try {
    const runtimes = [await findRuntime('youki'), await findRuntime('runc')];
    await ensurePlatformInputs(imagePlatform('amd64'));
    const bytes = generateMlpModel(spec);
    await writeFile(path.join(work, 'model.onnx'), bytes);
    const image = await buildModelImage({
      models: [{ name: spec.name!, version: '1', onnxPath: path.join(work, 'model.onnx') }],
      blobDir: path.join(work, 'blobs'),
    });
    const repository = uniqueRepository('bench-container');
    await pushImage(image, registry.url, repository, 'v1');
    const pulled = await pullImage(
      { registry: registry.url, repository, reference: image.digest },
      path.join(work, 'pull'),
    );
    const input = Array.from({ length: spec.inputDim }, (_, i) => ((i * 37) % 100) / 100);
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, spec.inputDim], datatype: 'FP32', data: input }],
    });
    console.log(
      `model ${spec.name}: ${(bytes.length / 1e6).toFixed(1)} MB; image ${(image.sizeBytes / 1e6).toFixed(1)} MB compressed; ${runs} rounds`,
    );
    for (const rt of runtimes) console.log(`  ${rt.name}: ${rt.path} (${rt.version})`);

    const variants: Array<{ label: string; run: () => Promise<Sample>; samples: Sample[] }> = [
      ...runtimes.map((rt) => ({
        label: `${rt.name} container`,
        run: () => inContainer(rt, pulled, work, body, spec.name!),
        samples: [] as Sample[],
      })),
      { label: 'plain process', run: () => plainProcess(pulled, work, body, spec.name!), samples: [] },
    ];
    await variants[0]!.run(); // warm the page cache with the image's files; not counted
    for (let round = 0; round < runs; round++) {
      for (const v of variants) v.samples.push(await v.run());
    }
    console.log('start → ready (GET /v2/health/ready on the socket), then the first inference:');
    for (const v of variants) {
      console.log(
        `  ${v.label.padEnd(16)} ready ${spread(v.samples.map((s) => s.ready))}   first inference ${spread(v.samples.map((s) => s.infer))}`,
      );
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
