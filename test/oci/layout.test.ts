/** OCI image layouts: written as the image-spec lays them out, read back verified, unpacked per platform. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Digest } from '../../lib/oci/digest';
import { assembleImage, assembleIndex, type BuiltImageIndex, OCI_INDEX_MEDIA_TYPE } from '../../lib/oci/image';
import { layerFromFiles } from '../../lib/oci/layer';
import { layoutBlobPath, REF_NAME_ANNOTATION, readLayoutTop, writeImageLayout } from '../../lib/oci/layout';
import { openLayoutImage, selectPlatform, unpackLayoutPlatform } from '../../lib/oci/sourcedImage';

let work: string;
let image: BuiltImageIndex;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-layout-test-'));
  const blobs = path.join(work, 'blobs');
  const shared = await layerFromFiles([{ path: '/models/m/model.onnx', bytes: Buffer.from('model bytes') }], blobs);
  const images = [];
  for (const architecture of ['amd64', 'arm64']) {
    const runtime = await layerFromFiles([{ path: '/etc/arch', bytes: Buffer.from(`${architecture}\n`) }], blobs);
    images.push(assembleImage([runtime, shared], { architecture, entrypoint: ['/bin/true'] }));
  }
  image = assembleIndex(images);
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('image layout', () => {
  it('writes oci-layout, an index.json naming the image by its tag, and every blob under its digest', async () => {
    const dir = path.join(work, 'out');
    const written = await writeImageLayout(image, dir, { tag: 'v1' });
    assert.equal(written.digest, image.digest);
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(index.manifests, [
      {
        mediaType: OCI_INDEX_MEDIA_TYPE,
        digest: image.digest,
        size: Buffer.byteLength(image.indexJson),
        annotations: { [REF_NAME_ANNOTATION]: 'v1' },
      },
    ]);
    // 2 runtime layers + 1 shared layer + 2 configs + 2 manifests + the index
    const names = await readdir(path.join(dir, 'blobs', 'sha256'));
    assert.equal(names.length, 8);
    for (const name of names) {
      assert.equal(sha256Digest(await readFile(path.join(dir, 'blobs', 'sha256', name))), `sha256:${name}`);
    }
    const again = await writeImageLayout(image, dir, { tag: 'v1' });
    assert.equal(again.writtenBytes, 0, 'a second write finds every blob in place');
  });

  it('reads the image back: both platforms, their configs, the tag', async () => {
    const dir = path.join(work, 'out');
    assert.equal((await readLayoutTop(dir)).tag, 'v1');
    const opened = await openLayoutImage(dir);
    assert.equal(opened.digest, image.digest);
    assert.deepEqual(
      opened.platforms.map((p) => [p.os, p.architecture, p.digest]),
      image.images.map((i) => ['linux', i.config.architecture, i.digest]),
    );
    assert.throws(
      () => selectPlatform(opened, 's390x'),
      /has no linux\/s390x image \(it has linux\/amd64, linux\/arm64\)/,
    );
  });

  it('unpacks one platform, and refuses a layout whose blob was altered', async () => {
    const dir = path.join(work, 'out');
    const opened = await openLayoutImage(dir);
    const arm = selectPlatform(opened, 'arm64');
    const pulled = await unpackLayoutPlatform(dir, opened, arm, path.join(work, 'unpacked'));
    assert.equal(await readFile(path.join(pulled.rootfs, 'etc', 'arch'), 'utf8'), 'arm64\n');
    assert.equal(await readFile(path.join(pulled.rootfs, 'models', 'm', 'model.onnx'), 'utf8'), 'model bytes');
    assert.equal(pulled.resolvedDigest, image.digest);

    const layer = arm.manifest.layers[1]!;
    await writeFile(layoutBlobPath(dir, layer.digest), 'tampered');
    await assert.rejects(
      unpackLayoutPlatform(dir, opened, arm, path.join(work, 'unpacked-2')),
      /does not match its digest: the layout is damaged/,
    );
    await writeFile(layoutBlobPath(dir, image.digest), '{}');
    await assert.rejects(openLayoutImage(dir), /does not match its digest/);
  });

  it('refuses a folder that holds something else, and a folder that is no layout', async () => {
    const other = path.join(work, 'other');
    await mkdir(other, { recursive: true });
    await writeFile(path.join(other, 'notes.txt'), 'mine');
    await assert.rejects(writeImageLayout(image, other), /neither empty nor an OCI image layout/);
    await assert.rejects(openLayoutImage(other), /is not an OCI image layout/);
  });
});
