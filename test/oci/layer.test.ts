import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { sha256Digest } from '../../lib/oci/digest';
import { assembleImage, canonicalJson } from '../../lib/oci/image';
import { layerFromDirectory, layerFromFiles, OCI_LAYER_MEDIA_TYPE } from '../../lib/oci/layer';

let work: string;
let source: string;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-layer-test-'));
  source = path.join(work, 'src');
  await mkdir(path.join(source, 'sub'), { recursive: true });
  await writeFile(path.join(source, 'weights.bin'), randomBytes(2 * 1024 * 1024));
  await writeFile(path.join(source, 'sub', 'config.json'), '{"a":1}');
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('layers', () => {
  it('same inputs → same digest and diffId, in any blob store, whatever the mtimes', async () => {
    const first = await layerFromDirectory(source, path.join(work, 'store-1'), '/data');
    await utimes(path.join(source, 'weights.bin'), new Date(2020, 0, 1), new Date(2020, 0, 1));
    const second = await layerFromDirectory(source, path.join(work, 'store-2'), '/data');
    assert.equal(second.digest, first.digest);
    assert.equal(second.diffId, first.diffId);
    assert.equal(second.size, first.size);
    assert.equal(first.mediaType, OCI_LAYER_MEDIA_TYPE);
    assert.notEqual(first.blobPath, second.blobPath);
    const moved = await layerFromDirectory(source, path.join(work, 'store-1'), '/elsewhere');
    assert.notEqual(moved.digest, first.digest, 'the path in the image is part of the content');
  });

  it('digest is the sha256 of the blob, diffId the sha256 of the tar inside it, gzip header has no name or mtime', async () => {
    const layer = await layerFromDirectory(source, path.join(work, 'store-1'), '/data');
    const blob = await readFile(layer.blobPath);
    assert.equal(blob.length, layer.size);
    assert.equal(sha256Digest(blob), layer.digest);
    assert.equal(sha256Digest(gunzipSync(blob)), layer.diffId);
    assert.equal(blob[3]! & 0x08, 0, 'FNAME flag not set');
    assert.equal(blob.readUInt32LE(4), 0, 'MTIME is 0');
  });

  it('bytes and a source file with the same content make the same layer', async () => {
    const store = path.join(work, 'store-3');
    const fromBytes = await layerFromFiles([{ path: '/m/config.json', bytes: Buffer.from('{"a":1}') }], store);
    const fromFile = await layerFromFiles(
      [{ path: 'm/config.json', sourcePath: path.join(source, 'sub', 'config.json') }],
      store,
    );
    assert.equal(fromFile.digest, fromBytes.digest);
  });

  it('image config and manifest digests are stable and sensitive to settings', async () => {
    const layer = await layerFromDirectory(source, path.join(work, 'store-1'), '/data');
    const settings = { entrypoint: ['node', '/app/server.js'], labels: { b: '2', a: '1' }, exposedPorts: ['8000/tcp'] };
    const one = assembleImage([layer], settings);
    const two = assembleImage([layer], { ...settings, labels: { a: '1', b: '2' } });
    assert.equal(two.digest, one.digest, 'label order does not matter');
    assert.equal(sha256Digest(one.manifestJson), one.digest);
    assert.equal(sha256Digest(one.configJson), one.configDigest);
    const manifest = JSON.parse(one.manifestJson);
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(manifest.layers, [{ mediaType: OCI_LAYER_MEDIA_TYPE, digest: layer.digest, size: layer.size }]);
    const config = JSON.parse(one.configJson);
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [layer.diffId] });
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    assert.equal(config.created, undefined, 'no timestamp');
    assert.deepEqual(config.config.ExposedPorts, { '8000/tcp': {} });
    assert.equal(one.configJson, canonicalJson(config));
    const changed = assembleImage([layer], { ...settings, env: ['X=1'] });
    assert.notEqual(changed.digest, one.digest);
  });
});
