/**
 * The container stage's smoke test on real images (lib/image/testedPush.ts, smokeTest.ts): pushed by
 * digest, run under youki, runc and as a plain process, asked for one inference compared with
 * onnxruntime's own output, and tagged only then. Bad images — a configuration layer that points at a
 * model the image does not hold, an image that serves another model than the one it should, an image
 * for another architecture — fail with the server's log tail where there is one, and leave no tag.
 * And the unpacking from the built layers: a cached runtime tree, hard-linked, never written through.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { RUNTIME_NAMES } from '../../lib/container/containerRuntime';
import { unpackBuiltImage } from '../../lib/image/builtRootfs';
import { imageRunnerFor } from '../../lib/image/imageServer';
import { type BuiltImage, type BuiltImageIndex, buildModelImageIndex } from '../../lib/image/modelImage';
import { ensurePlatformInputs, imagePlatform } from '../../lib/image/platforms';
import { SMOKE_AGREEMENT, SmokeTestError, type SmokeTestRecord } from '../../lib/image/smokeTest';
import { pushSmokeTestedImage } from '../../lib/image/testedPush';
import { assembleImage, assembleIndex, hostArchitecture } from '../../lib/oci/image';
import { layerFromFiles } from '../../lib/oci/layer';
import { getManifest } from '../../lib/oci/registry';
import { authHeaders, type TestRegistry, uniqueRepository, useRegistry } from '../oci/registryFixture';
import { mlpModel } from '../runtime/onnxTestModels';

const HOST_ARCH = hostArchitecture() as 'amd64' | 'arm64';
const OTHER_ARCH = HOST_ARCH === 'amd64' ? 'arm64' : 'amd64';

let work: string;
let registry: TestRegistry;
let modelPath: string;
let otherModelPath: string;

/** The registry's tags of `repository` (none when it has never had one). */
async function tagsOf(repository: string): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/${repository}/tags/list`, { headers: authHeaders(registry) });
  const body = await res.text();
  if (res.status === 404) return [];
  assert.equal(res.status, 200, body);
  return (JSON.parse(body) as { tags: string[] | null }).tags ?? [];
}

async function buildIndex(name: string, onnxPath: string, architectures = [HOST_ARCH]): Promise<BuiltImageIndex> {
  return buildModelImageIndex({
    models: [{ name, version: '1', onnxPath }],
    architectures,
    blobDir: path.join(work, 'blobs'),
  });
}

/** The same image with its configuration layer (the top one) replaced by `other`'s. */
function withConfigurationOf(image: BuiltImage, other: BuiltImage): BuiltImage {
  const c = image.config.config;
  return assembleImage([...image.layers.slice(0, -1), other.layers.at(-1)!], {
    entrypoint: c.Entrypoint,
    env: c.Env,
    workingDir: c.WorkingDir,
    user: c.User,
    labels: c.Labels,
    exposedPorts: Object.keys(c.ExposedPorts ?? {}),
    architecture: image.config.architecture,
    os: image.config.os,
  });
}

async function testedPush(
  image: BuiltImage | BuiltImageIndex,
  repository: string,
  runtime: 'youki' | 'runc' | 'process',
  reference = modelPath,
) {
  return pushSmokeTestedImage(image, {
    registryUrl: registry.url,
    repository,
    tag: 'v1',
    smokeTest: {
      model: { name: 'mlp', onnxPath: reference },
      runner: await imageRunnerFor(runtime),
      workDir: await mkdtemp(path.join(work, `smoke-${runtime}-`)),
      cacheDir: loadConfig().cacheDir,
      readyTimeoutMs: 30_000,
    },
  });
}

async function assertFailsUntagged(
  run: Promise<unknown>,
  repository: string,
  expected: RegExp,
  logTail?: RegExp,
): Promise<SmokeTestError> {
  const err = await run.then(
    () => assert.fail('the smoke test passed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SmokeTestError, String(err));
  assert.match(err.message, expected);
  if (logTail) {
    assert.match(err.logTail, logTail);
    assert.ok(err.message.includes(err.logTail), 'the message carries the log tail');
  }
  assert.deepEqual(await tagsOf(repository), [], 'no tag names the bad image');
  return err;
}

before(async () => {
  await ensurePlatformInputs(imagePlatform(HOST_ARCH));
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-smoke-test-'));
  modelPath = path.join(work, 'mlp.onnx');
  otherModelPath = path.join(work, 'other.onnx');
  await writeFile(modelPath, mlpModel({ inputDim: 6, hiddenDims: [16], outputDim: 4, seed: 5 }));
  await writeFile(otherModelPath, mlpModel({ inputDim: 6, hiddenDims: [16], outputDim: 4, seed: 6 }));
  registry = await useRegistry();
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the smoke test of a model image', { timeout: 300_000 }, () => {
  const records: SmokeTestRecord[] = [];

  for (const runtime of [...RUNTIME_NAMES, 'process'] as const) {
    test(`under ${runtime}: the image answers as onnxruntime does, and is tagged only then`, async () => {
      const image = await buildIndex('mlp', modelPath);
      const repository = uniqueRepository(`smoke-${runtime}`);
      const { pushed, smokeTest } = await testedPush(image, repository, runtime);
      records.push(smokeTest);
      assert.equal(pushed.digest, image.digest);
      assert.deepEqual(await tagsOf(repository), ['v1']);
      assert.equal((await getManifest(registry.url, repository, 'v1')).config.digest, image.images[0]!.configDigest);

      assert.equal(smokeTest.runtime, runtime);
      assert.equal(smokeTest.platform, `linux/${HOST_ARCH}`);
      assert.equal(smokeTest.platformDigest, image.images[0]!.digest);
      assert.deepEqual(smokeTest.request.inputs, { input: [4, 6] }, 'four rows of the dynamic batch dim');
      assert.ok(smokeTest.agreement.cosine >= SMOKE_AGREEMENT.minCosine, JSON.stringify(smokeTest.agreement));
      assert.equal(smokeTest.agreement.top1, 1);
      assert.ok(smokeTest.agreement.maxAbsError <= 1e-5, JSON.stringify(smokeTest.agreement));
      assert.deepEqual(smokeTest.agreement.outputs, ['output']);
      if (runtime === 'process') assert.match(smokeTest.runtimeVersion, /plain process/);
      else assert.match(smokeTest.runtimeVersion, new RegExp(runtime));
    });
  }

  test('an image whose configuration names a model it does not hold fails with the log tail, untagged', async () => {
    const good = (await buildIndex('mlp', modelPath)).images[0]!;
    const other = (await buildIndex('absent', modelPath)).images[0]!;
    const bad = assembleIndex([withConfigurationOf(good, other)]);
    const repository = uniqueRepository('smoke-missing-model');
    const err = await assertFailsUntagged(
      testedPush(bad, repository, 'youki'),
      repository,
      /the image's server under youki did not become ready: the server exited with code \d+/,
      /absent/,
    );
    assert.equal(err.runtime, 'youki');
    // The image itself is in the registry, by digest only, for a look at what went wrong.
    assert.equal((await getManifest(registry.url, repository, bad.digest)).layers.length, good.layers.length);
  });

  test('an image that serves another model fails on the comparison, untagged', async () => {
    const image = await buildIndex('mlp', otherModelPath);
    const repository = uniqueRepository('smoke-wrong-answer');
    await assertFailsUntagged(
      testedPush(image, repository, 'runc', modelPath),
      repository,
      /under runc answered otherwise than onnxruntime on the same input: .*cosine/,
      /./,
    );
  });

  test('an image for another architecture is refused before anything is pushed', async () => {
    await ensurePlatformInputs(imagePlatform(OTHER_ARCH));
    const image = await buildIndex('mlp', modelPath, [OTHER_ARCH]);
    const repository = uniqueRepository('smoke-wrong-arch');
    await assertFailsUntagged(
      testedPush(image, repository, 'youki'),
      repository,
      new RegExp(`built for linux/${OTHER_ARCH}, not for this machine's linux/${HOST_ARCH}`),
    );
    await assert.rejects(getManifest(registry.url, repository, image.digest), /404|not found|unknown/i);
  });

  test('the unpacked runtime layer is shared by hard links, and an upper layer never writes through them', async () => {
    const good = (await buildIndex('mlp', modelPath)).images[0]!;
    const cacheDir = await mkdtemp(path.join(work, 'cache-'));
    const replacing = await layerFromFiles([{ path: '/etc/passwd', bytes: Buffer.from('changed\n') }], work);
    const image = assembleImage([good.layers[0]!, replacing], { architecture: HOST_ARCH, os: 'linux' });
    const first = await unpackBuiltImage(image, path.join(work, 'unpack-1'), { cacheDir });
    const [tree] = await readdir(path.join(cacheDir, 'rootfs'));
    const cached = path.join(cacheDir, 'rootfs', tree!);
    assert.equal(await readFile(path.join(first.rootfs, 'etc/passwd'), 'utf8'), 'changed\n');
    assert.match(await readFile(path.join(cached, 'etc/passwd'), 'utf8'), /65532/, 'the cached tree is untouched');
    const node = 'usr/bin/node';
    assert.equal((await stat(path.join(first.rootfs, node))).ino, (await stat(path.join(cached, node))).ino);
    // A second image on the same runtime layer starts from the same, intact tree.
    const second = await unpackBuiltImage(good, path.join(work, 'unpack-2'), { cacheDir });
    assert.match(await readFile(path.join(second.rootfs, 'etc/passwd'), 'utf8'), /65532/);
    assert.ok((await stat(path.join(second.rootfs, 'models/mlp/model.onnx'))).isFile());
    assert.deepEqual(await readdir(path.join(cacheDir, 'rootfs')), [tree], 'one tree per runtime layer');
  });

  after(() => {
    for (const r of records) {
      console.log(
        `smoke test under ${r.runtime}: unpack ${r.timings.unpackMs.toFixed(0)} ms, ready ${r.timings.readyMs.toFixed(0)} ms, ` +
          `inference ${r.timings.inferMs.toFixed(1)} ms, total ${r.timings.totalMs.toFixed(0)} ms`,
      );
    }
  });
});
