import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Digest } from '../../lib/oci/digest';
import { assembleImage } from '../../lib/oci/image';
import { layerFromFiles } from '../../lib/oci/layer';
import { pullImage } from '../../lib/oci/pull';
import { pushImage } from '../../lib/oci/push';
import { RegistryClient, RegistryError } from '../../lib/oci/registry';
import { freePort, type TestRegistry, uniqueRepository, useRegistry } from './registryFixture';

let registry: TestRegistry;
let work: string;
const repository = uniqueRepository('client');

before(async () => {
  registry = await useRegistry();
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-registry-test-'));
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('registry client', () => {
  it('uploads a blob once, from a file, and reads it back', async () => {
    const client = new RegistryClient(registry.url);
    await client.ping();
    const bytes = randomBytes(300_000);
    const file = path.join(work, 'blob');
    await writeFile(file, bytes);
    const blob = { digest: sha256Digest(bytes), size: bytes.length, path: file };
    assert.equal(await client.blobExists(repository, blob.digest), false);
    assert.deepEqual(await client.pushBlob(repository, blob), { pushed: true, bytes: bytes.length });
    assert.equal(await client.blobExists(repository, blob.digest), true);
    assert.deepEqual(await client.pushBlob(repository, blob), { pushed: false, bytes: 0 });
    const chunks: Buffer[] = [];
    for await (const chunk of await client.getBlob(repository, blob.digest)) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), bytes);
  });

  it('refuses a blob whose bytes do not match the digest it claims (registry answers DIGEST_INVALID)', async () => {
    const client = new RegistryClient(registry.url);
    const bytes = Buffer.from('real content');
    const claimed = sha256Digest('other content');
    await assert.rejects(
      client.pushBlob(repository, { digest: claimed, size: bytes.length, bytes }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, 'DIGEST_INVALID');
        assert.ok(error.message.includes(registry.url), error.message);
        return true;
      },
    );
  });

  it('names the registry, the repository and the reference when a manifest is missing', async () => {
    const client = new RegistryClient(registry.url);
    await assert.rejects(client.getManifest(repository, 'no-such-tag'), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 404);
      assert.equal(error.code, 'MANIFEST_UNKNOWN');
      assert.match(
        error.message,
        new RegExp(
          `registry ${registry.url}: getting manifest ${repository}:no-such-tag failed: HTTP 404 MANIFEST_UNKNOWN`,
        ),
      );
      return true;
    });
  });

  it('rejects invalid repository names and references before any request', async () => {
    const client = new RegistryClient(registry.url);
    await assert.rejects(client.getManifest('Ferry/UPPER', 'v1'), /invalid repository name/);
    await assert.rejects(client.getManifest('ferry/ok', '../v1'), /invalid image reference/);
  });
});

describe('registry down', () => {
  it('push and pull fail with an error naming the registry URL and what was being done', async () => {
    const port = await freePort(); // nothing listens here
    const downUrl = `http://127.0.0.1:${port}`;
    const layer = await layerFromFiles([{ path: '/x.txt', bytes: Buffer.from('x') }], path.join(work, 'blobs'));
    const image = assembleImage([layer], {});
    await assert.rejects(pushImage(image, downUrl, 'ferry/down', 'v1'), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.match(
        error.message,
        new RegExp(
          `^registry ${downUrl}: checking blob sha256:[0-9a-f]{64} in ferry/down failed: cannot reach .*connection refused`,
        ),
      );
      return true;
    });
    await assert.rejects(
      pullImage({ registry: downUrl, repository: 'ferry/down', reference: 'v1' }, path.join(work, 'pull-down')),
      new RegExp(`registry ${downUrl}: getting manifest ferry/down:v1 failed: cannot reach .*is the registry running`),
    );
  });
});
