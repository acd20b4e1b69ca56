import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestHex } from '../../lib/oci/digest';
import { assembleImage } from '../../lib/oci/image';
import { layerFromFiles } from '../../lib/oci/layer';
import { pullImage } from '../../lib/oci/pull';
import { pushImage } from '../../lib/oci/push';
import { startPrivateRegistry, type TestRegistry, uniqueRepository } from './registryFixture';

let work: string;
let blobs: string;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-pull-test-'));
  blobs = path.join(work, 'blobs');
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('pullImage', () => {
  // A registry of our own: the corruption test edits its storage on disk.
  let registry: TestRegistry;
  before(async () => {
    registry = await startPrivateRegistry();
  });
  after(async () => registry?.stop());

  it('applies whiteouts: ".wh.<name>" deletes a lower file, ".wh..wh..opq" empties a lower directory', async () => {
    const lower = await layerFromFiles(
      [
        { path: '/keep.txt', bytes: Buffer.from('keep') },
        { path: '/gone.txt', bytes: Buffer.from('gone') },
        { path: '/dir/old.txt', bytes: Buffer.from('old') },
        { path: '/tree/a/b.txt', bytes: Buffer.from('b') },
      ],
      blobs,
    );
    const upper = await layerFromFiles(
      [
        { path: '/.wh.gone.txt', bytes: Buffer.alloc(0) },
        { path: '/.wh.tree', bytes: Buffer.alloc(0) },
        { path: '/dir/.wh..wh..opq', bytes: Buffer.alloc(0) },
        { path: '/dir/new.txt', bytes: Buffer.from('new') },
      ],
      blobs,
    );
    const image = assembleImage([lower, upper], {});
    const repository = uniqueRepository('whiteout');
    await pushImage(image, registry.url, repository, 'v1');
    const { rootfs } = await pullImage({ registry: registry.url, repository, reference: 'v1' }, path.join(work, 'wh'));
    assert.deepEqual((await readdir(rootfs)).sort(), ['dir', 'keep.txt']);
    assert.deepEqual(await readdir(path.join(rootfs, 'dir')), ['new.txt']);
    assert.equal(await readFile(path.join(rootfs, 'keep.txt'), 'utf8'), 'keep');
  });

  it('refuses a blob whose bytes no longer match its digest, and leaves no rootfs behind', async () => {
    const layer = await layerFromFiles([{ path: '/models/m/model.onnx', bytes: Buffer.alloc(64 * 1024, 7) }], blobs);
    const image = assembleImage([layer], {});
    const repository = uniqueRepository('corrupt');
    await pushImage(image, registry.url, repository, 'v1');

    // Flip one byte of the stored layer in the registry's own storage (size unchanged).
    const hex = digestHex(layer.digest);
    const stored = path.join(registry.storageDir!, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    assert.equal((await stat(stored)).size, layer.size);
    const handle = await open(stored, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 100);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 100);
    await handle.close();

    const dest = path.join(work, 'corrupt');
    await assert.rejects(
      pullImage({ registry: registry.url, repository, reference: 'v1' }, dest),
      new RegExp(`blob ${layer.digest} from ${registry.url}/${repository} failed verification`),
    );
    assert.deepEqual(await readdir(dest), [], 'no rootfs, marker or temporary files');
  });
});
