/**
 * Reproducible images: the same inputs, built twice from empty caches, give the same layer digests,
 * image digests and index digest, for both architectures; a changed model changes only what it must.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGunzip } from 'node:zlib';
import { type BuiltImageIndex, buildModelImageIndex } from '../../lib/image/modelImage';
import { readTar } from '../../lib/oci/tar';
import { mlpModel } from '../runtime/onnxTestModels';

let work: string;
let modelA: string;
let modelB: string;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-repro-test-'));
  modelA = path.join(work, 'a.onnx');
  modelB = path.join(work, 'b.onnx');
  await writeFile(modelA, mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 1 }));
  await writeFile(modelB, mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 2 }));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A build with nothing cached: fresh layer cache, fresh blob dir. */
function cleanBuild(name: string, onnxPath: string): Promise<BuiltImageIndex> {
  return buildModelImageIndex({
    models: [{ name: 'mlp', version: '1', onnxPath, sessionOptions: { intraOpNumThreads: 1 } }],
    runtime: { cacheDir: path.join(work, `cache-${name}`) },
    blobDir: path.join(work, `blobs-${name}`),
  });
}

describe('reproducible builds', () => {
  let first: BuiltImageIndex;

  it('two builds from clean caches give the same digests, layer by layer, for amd64 and arm64', async (t) => {
    first = await cleanBuild('1', modelA);
    const second = await cleanBuild('2', modelA);
    assert.notEqual(first.images[0]!.layers[0]!.blobPath, second.images[0]!.layers[0]!.blobPath, 'separate caches');
    assert.deepEqual(
      first.images.map((i) => i.config.architecture),
      ['amd64', 'arm64'],
    );
    for (const [i, image] of first.images.entries()) {
      const again = second.images[i]!;
      assert.deepEqual(
        again.layers.map((l) => [l.digest, l.diffId, l.size]),
        image.layers.map((l) => [l.digest, l.diffId, l.size]),
      );
      assert.equal(again.configDigest, image.configDigest);
      assert.equal(again.digest, image.digest);
      const runtime = image.layers[0]!;
      t.diagnostic(
        `${image.config.architecture}: runtime layer ${runtime.uncompressedSize} bytes, ${runtime.size} gzip, ${runtime.digest}`,
      );
    }
    assert.equal(second.digest, first.digest);
    assert.equal(second.indexJson, first.indexJson);
  });

  it('the layers carry fixed owners; only the model and configuration layers follow the model', async () => {
    for await (const entry of readTar(createReadStream(first.images[1]!.layers[0]!.blobPath).pipe(createGunzip()))) {
      const expectedOwner = entry.path === 'home/ferry/' ? 65532 : 0;
      assert.equal(entry.uid, expectedOwner, `${entry.path} uid`);
      assert.equal(entry.gid, expectedOwner, `${entry.path} gid`);
    }
    const other = await cleanBuild('3', modelB);
    assert.notEqual(other.digest, first.digest);
    for (const [i, image] of other.images.entries()) {
      const before = first.images[i]!.layers.map((l) => l.digest);
      const now = image.layers.map((l) => l.digest);
      assert.equal(now[0], before[0], 'runtime layer');
      assert.equal(now[1], before[1], 'server layer');
      assert.notEqual(now[2], before[2], 'model layer');
      // Same name, version and settings: the configuration layer does not change with the weights.
      assert.equal(now[3], before[3], 'configuration layer');
    }
    // The model, server and configuration layers are the same blobs in both architectures' images.
    assert.deepEqual(other.images[0]!.layers.slice(1), other.images[1]!.layers.slice(1));
  });
});
