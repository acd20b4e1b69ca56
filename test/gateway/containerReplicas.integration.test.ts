/**
 * The local target runs an image's replicas as containers (lib/gateway/containerReplica.ts): real
 * model images pushed to the stack's registry, deployed through a gateway running as root with youki
 * and runc from `bash infra/install-container-runtime.sh` (missing ones fail, saying so), checked in
 * the kernel's view of the replica process: its user, no new privileges, seccomp, its cgroup's CPU and
 * memory limits from the spec, a read-only root; inference through the gateway, scale to zero and a
 * cold start, adoption by a restarted gateway. A replica that goes over its memory limit is OOM-killed
 * and replaced, and its deployment's events say so; plain processes remain, as a fallback that says why.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { runContainer } from '../../lib/container/container';
import { HostCgroups } from '../../lib/container/hostCgroups';
import { startGateway } from '../../lib/gateway';
import { buildModelImage, pushImage } from '../../lib/image/modelImage';
import type { DeploymentStatus, ImageRef, ReplicaResources } from '../../lib/targets/deploymentTarget';
import { LocalTarget } from '../../lib/targets/local';
import { registryAnswers } from '../oci/registryFixture';
import {
  assertAllDead,
  directOutput,
  eventually,
  type GatewayFixture,
  inferSlow,
  inferThrough,
  isAlive,
  MLP_V1,
  slowMatMulModel,
  startTestGateway,
  tempDir,
} from './gatewayFixture';

const MiB = 1 << 20;
/** The slow model at dim 1024 and 12 layers: 48 MB of weights; a request's rows cost 4 KiB each per layer output. */
const BIG_DIM = 1024;

/** The replica's cgroup path (the memory hierarchy's) as /proc/<pid>/cgroup gives it. */
function cgroupOf(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const line = lines.find((l) => /^\d+:[^:]*\bmemory\b[^:]*:/.test(l)) ?? lines.find((l) => l.startsWith('0::'));
  assert.ok(line, `no memory cgroup for pid ${pid}`);
  return line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
}

function procStatus(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/:\s+/, 2) as [string, string]),
  );
}

/** Runs `fn` with FERRY_CONTAINER_RUNTIME set (the gateway reads it when it starts). */
async function withRuntimeSetting<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.FERRY_CONTAINER_RUNTIME;
  if (value === undefined) delete process.env.FERRY_CONTAINER_RUNTIME;
  else process.env.FERRY_CONTAINER_RUNTIME = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.FERRY_CONTAINER_RUNTIME;
    else process.env.FERRY_CONTAINER_RUNTIME = before;
  }
}

const registry = loadConfig().registry.url;
let work: string;
let mlpImage: ImageRef;
let bigImage: ImageRef;
let expected: number[];

before(async () => {
  assert.ok(
    await registryAnswers(registry),
    `registry at ${registry} is not running (start the dev stack: bash infra/stack.sh start, or set FERRY_REGISTRY_URL)`,
  );
  assert.equal(process.getuid?.(), 0, 'containers need root: run these tests as root');
  work = await tempDir('container-replicas');
  const push = async (name: string, bytes: Uint8Array): Promise<ImageRef> => {
    const onnxPath = path.join(work, `${name}.onnx`);
    await writeFile(onnxPath, bytes);
    const image = await buildModelImage({
      models: [{ name, version: '1', onnxPath }],
      blobDir: path.join(work, 'blobs'),
    });
    const repository = `ferry-test/container-replicas-${name}-${process.pid}-${Date.now()}`;
    const pushed = await pushImage(image, registry, repository, 'v1');
    return { registry, repository, reference: pushed.digest };
  };
  mlpImage = await push('mlp', MLP_V1);
  bigImage = await push('slow', slowMatMulModel(BIG_DIM, 12));
  expected = await directOutput(MLP_V1);
});

const spec = (image: ImageRef, resources?: ReplicaResources, id = 'c') => ({
  id,
  model: image === bigImage ? 'slow' : 'mlp',
  replicas: 1,
  image,
  ...(resources ? { resources } : {}),
});

describe('image replicas as containers under youki (the default)', { timeout: 240_000 }, () => {
  let fx: GatewayFixture;
  let target: LocalTarget;
  before(async () => {
    fx = await withRuntimeSetting(undefined, () => startTestGateway('container-replicas'));
    target = new LocalTarget(fx.gateway.url);
  });
  after(() => fx?.cleanup());

  test('a container with the spec limits, read-only root, no new privileges, seccomp, the image user', async () => {
    const status = await target.apply(spec(mlpImage, { cpus: 0.5, memoryMb: 256 }));
    assert.equal(status.state, 'running');
    assert.equal(status.replicas.length, 1);
    const [replica] = status.replicas;
    assert.equal(replica!.runtime, 'youki', 'youki ran it');
    assert.deepEqual(status.resources, { cpus: 0.5, memoryMb: 256 });
    assert.deepEqual(status.spec.resources, { cpus: 0.5, memoryMb: 256 });
    assert.ok(fx.logs.some((l) => /image replicas run as containers under youki/.test(l)));

    const pid = replica!.pid;
    const proc = procStatus(pid);
    assert.equal(proc.Uid!.split('\t')[0], '65532', 'the image user, not root');
    assert.equal(proc.NoNewPrivs, '1');
    assert.equal(proc.Seccomp, '2', 'a seccomp filter');
    assert.equal(proc.CapEff, '0000000000000000');
    // The image's own node runs its server, seen from inside the container.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(cmdline, ['/usr/bin/node', '/app/server.js']);
    const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === '/');
    assert.match(rootMount ?? '', /^\S+ \S+ \S+ \S+ \/ (ro|ro,\S*)\s/, `root is read-only: ${rootMount}`);

    const cg = await HostCgroups.read();
    const cgroupPath = cgroupOf(pid);
    assert.equal(await cg.memoryLimit(cgroupPath), 256 * MiB);
    assert.deepEqual(await cg.cpuQuota(cgroupPath), { quotaUs: 50_000, periodUs: 100_000 });

    const res = await inferThrough(status.endpoint);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json.outputs[0].data, expected);
    assert.equal(res.replica, String(pid));

    // New limits are a new spec: a new container replaces the old one.
    const resized = await target.apply(spec(mlpImage, { cpus: 1, memoryMb: 192 }));
    const newPid = resized.replicas[0]!.pid;
    assert.notEqual(newPid, pid);
    await assertAllDead([pid], 'the container with the old limits');
    assert.equal(await cg.memoryLimit(cgroupOf(newPid)), 192 * MiB);
  });

  test('scaled to zero, a request wakes the standby container, which loaded the server in advance', async () => {
    const before = await target.status('c');
    const pid = before.replicas[0]!.pid;
    await target.hibernate('c');
    await assertAllDead([pid], 'hibernate');
    await eventually('a standby container', () =>
      fx.logs.some((l) => /standby container \S+ \(youki\) started/.test(l)),
    );
    const res = await inferThrough(before.endpoint);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json.outputs[0].data, expected);
    const after = await target.status('c');
    assert.equal(after.coldStarts, before.coldStarts + 1);
    assert.equal(after.replicas[0]!.runtime, 'youki');
    const woke = after.replicas[0]!.pid;
    assert.notEqual(woke, pid);
    assert.ok(
      fx.logs.some((l) => l.includes(`started replica pid(s) ${woke}:0 (pre-started) (youki)`)),
      fx.logs.join('\n'),
    );
    // The standby container became the replica with the spec's limits and the same confinement.
    assert.equal(await (await HostCgroups.read()).memoryLimit(cgroupOf(woke)), 192 * MiB);
    const proc = procStatus(woke);
    assert.equal(proc.Uid!.split('\t')[0], '65532');
    assert.equal(proc.NoNewPrivs, '1');
    assert.equal(proc.Seccomp, '2');
  });

  test('a restarted gateway adopts the running container, and removes one no replica record names', async () => {
    const first = await target.status('c');
    const pid = first.replicas[0]!.pid;
    const stateDir = path.join(fx.dir, 'state');
    await fx.gateway.close({ stopReplicas: false });
    assert.ok(isAlive(pid), 'the container outlives its gateway');
    // What a gateway that crashed would leave: a container of its own that no record names.
    const [tree] = readdirSync(path.join(stateDir, 'images'));
    const orphan = await runContainer({
      rootfs: path.join(stateDir, 'images', tree!, 'rootfs'),
      image: { Entrypoint: ['/usr/bin/node', '-e', 'setInterval(() => {}, 1000)'], User: '65532:65532' },
      limits: { cpus: 0.5, memoryBytes: 64 * MiB },
      bundlesDir: path.join(stateDir, 'gateway', 'containers'),
    });
    fx.gateway = await startGateway({ port: 0, stateDir, stopGraceMs: 5000, log: (m) => fx.logs.push(m) });
    assert.ok(
      fx.logs.some((l) => l.includes(`removed container ${orphan.id}`)),
      fx.logs.join('\n'),
    );
    assert.ok(!existsSync(orphan.bundleDir));
    await assertAllDead([orphan.pid], 'the orphan container');
    target = new LocalTarget(fx.gateway.url);
    const adopted = await target.status('c');
    assert.equal(adopted.state, 'running');
    assert.deepEqual(
      adopted.replicas.map((r) => [r.pid, r.runtime]),
      [[pid, 'youki']],
    );
    const res = await inferThrough(adopted.endpoint);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.replica, String(pid));
  });

  test('over its memory limit a replica is OOM-killed and replaced, and the events say so', async () => {
    // 48 MB of weights cannot be loaded in 64 MiB: the replica dies before it is ready.
    await assert.rejects(
      target.apply(spec(bigImage, { cpus: 1, memoryMb: 64 }, 'big')),
      /OOM-killed: over its 64 MiB memory limit/,
    );
    // In 256 MiB it loads and serves small batches...
    const status = await target.apply(spec(bigImage, { cpus: 1, memoryMb: 256 }, 'big'));
    const pid = status.replicas[0]!.pid;
    assert.equal((await inferSlow(status.endpoint, 16, {}, BIG_DIM)).status, 200);
    // ...but a batch of 100 000 rows needs ~400 MB per layer output: the kernel kills it mid-request.
    const big = await inferSlow(status.endpoint, 100_000, {}, BIG_DIM);
    assert.notEqual(big.status, 200);
    const replaced = await eventually('a replacement replica', async () => {
      const s = await target.status('big');
      return s.replicas.some((r) => r.ready && r.pid !== pid) ? s : undefined;
    });
    assert.equal(replaced.restarts, 1);
    const exit = replaced.events.find((e) => e.type === 'exited');
    assert.ok(exit, JSON.stringify(replaced.events));
    assert.equal(exit.pid, pid);
    assert.equal(exit.runtime, 'youki');
    assert.equal(exit.oomKilled, true);
    assert.equal(exit.reason, 'OOM-killed: over its 256 MiB memory limit');
    assert.ok(fx.logs.some((l) => l.includes(`replica pid ${pid} OOM-killed: over its 256 MiB memory limit`)));
    assert.equal((await inferSlow(replaced.endpoint, 16, {}, BIG_DIM)).status, 200, 'the replacement serves');
    await target.destroy('big');
  });
});

describe('image replicas under the other runtimes', { timeout: 120_000 }, () => {
  const deployUnder = async (setting: string): Promise<{ status: DeploymentStatus; fx: GatewayFixture }> => {
    const fx = await withRuntimeSetting(setting, () => startTestGateway(`container-replicas-${setting}`));
    try {
      const status = await new LocalTarget(fx.gateway.url).apply(spec(mlpImage));
      assert.equal((await inferThrough(status.endpoint)).status, 200);
      return { status, fx };
    } catch (err) {
      await fx.cleanup();
      throw err;
    }
  };

  test('FERRY_CONTAINER_RUNTIME=runc: runc runs it, with the default limits', async () => {
    const { status, fx } = await deployUnder('runc');
    try {
      assert.equal(status.replicas[0]!.runtime, 'runc');
      const { defaultResources } = loadConfig().replicas;
      assert.deepEqual(status.resources, defaultResources);
      assert.equal(status.spec.resources, undefined, 'the spec gave none');
      const cg = await HostCgroups.read();
      assert.equal(await cg.memoryLimit(cgroupOf(status.replicas[0]!.pid)), defaultResources.memoryMb * MiB);
      assert.deepEqual(status.events, []);
    } finally {
      await fx.cleanup();
    }
  });

  test('FERRY_CONTAINER_RUNTIME=process: plain processes, a fallback that says so', async () => {
    const { status, fx } = await deployUnder('process');
    try {
      const [replica] = status.replicas;
      assert.equal(replica!.runtime, 'process');
      // (The standby process that became it set its title to the replica's command line.)
      const cmdline = readFileSync(`/proc/${replica!.pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().split(/ +/);
      assert.equal(cmdline[0], process.execPath, 'the host node runs the entrypoint');
      assert.match(cmdline[1]!, /\/images\/.+\/rootfs\/app\/server\.js$/);
      assert.deepEqual(
        status.events.map((e) => [e.type, e.runtime, e.reason]),
        [['process-fallback', 'process', 'FERRY_CONTAINER_RUNTIME=process']],
      );
      assert.ok(
        fx.logs.some((l) => /warning: image replicas run as plain processes.*FERRY_CONTAINER_RUNTIME=process/.test(l)),
        fx.logs.join('\n'),
      );
    } finally {
      await fx.cleanup();
    }
  });
});

after(async () => {
  if (work) await import('node:fs/promises').then((fs) => fs.rm(work, { recursive: true, force: true }));
});
