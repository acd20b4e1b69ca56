/**
 * Chunked, resumable, retried pushes against the real registry, through a proxy that injects real
 * network faults (faultProxy.ts): a 503, a connection dropped before or halfway through a chunk, a
 * registry that vanishes mid-push.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sha256Digest } from '../../lib/oci/digest';
import { assembleImage } from '../../lib/oci/image';
import { layerFromFiles } from '../../lib/oci/layer';
import { pushImage } from '../../lib/oci/push';
import { type BlobProgress, RegistryClient, RegistryError, type RetryPolicy } from '../../lib/oci/registry';
import { FaultProxy } from './faultProxy';
import { type TestRegistry, uniqueRepository, useRegistry } from './registryFixture';

const CHUNK = 64 << 10;
const FAST_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 20, maxDelayMs: 200 };

let registry: TestRegistry;
let proxy: FaultProxy;
let work: string;

before(async () => {
  registry = await useRegistry();
  proxy = await FaultProxy.start(registry.url);
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-push-test-'));
});

after(async () => {
  await proxy?.stop().catch(() => undefined);
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(() => proxy.inject());

/** A blob of `size` random bytes in a file. */
async function blobFile(size: number) {
  const bytes = randomBytes(size);
  const file = path.join(work, `blob-${bytes.subarray(0, 6).toString('hex')}`);
  await writeFile(file, bytes);
  return { bytes, blob: { digest: sha256Digest(bytes), size, path: file } };
}

async function readBack(repository: string, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await new RegistryClient(registry.url).getBlob(repository, digest)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function client(): RegistryClient {
  return new RegistryClient(proxy.url, {
    chunkBytes: CHUNK,
    retry: FAST_RETRY,
    credentials: registry.credentials ?? null,
  });
}

describe('chunked upload', () => {
  it('sends a blob in PATCHes of the chunk size with Content-Range, then commits it', async () => {
    const repository = uniqueRepository('chunks');
    const { bytes, blob } = await blobFile(5 * CHUNK + 1234);
    const progress: BlobProgress[] = [];
    const pushed = await client().pushBlob(repository, blob, { onProgress: (p) => progress.push(p) });
    assert.deepEqual(pushed, { pushed: true, bytes: blob.size });
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    assert.deepEqual(
      patches.map((r) => r.forwardedBytes),
      [CHUNK, CHUNK, CHUNK, CHUNK, CHUNK, 1234],
    );
    assert.ok(patches.every((r) => r.status === 202));
    assert.deepEqual(
      progress.map((p) => `${p.state}:${p.sentBytes}`),
      [1, 2, 3, 4, 5].map((n) => `uploading:${n * CHUNK}`).concat([`uploading:${blob.size}`, `pushed:${blob.size}`]),
    );
    assert.deepEqual(await readBack(repository, blob.digest), bytes);
  });
});

describe('faults during an upload', () => {
  it('a 503 on a chunk: waits, asks the registry where the upload stands, and resumes there', async () => {
    const repository = uniqueRepository('503');
    const { bytes, blob } = await blobFile(4 * CHUNK);
    proxy.inject({ method: 'PATCH', nth: 3, action: 'status-503' });
    const progress: BlobProgress[] = [];
    await client().pushBlob(repository, blob, { onProgress: (p) => progress.push(p) });
    assert.ok(
      progress.some((p) => p.state === 'resuming' && p.sentBytes === 2 * CHUNK),
      JSON.stringify(progress),
    );
    // Not one byte twice: the registry got exactly the blob.
    assert.equal(proxy.forwardedBytes('PATCH'), blob.size);
    assert.ok(proxy.requests.some((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/') && r.status === 204));
    assert.deepEqual(await readBack(repository, blob.digest), bytes);
  });

  it('a connection dropped before a chunk reached the registry: resumes from the offset the registry reports', async () => {
    const repository = uniqueRepository('drop-before');
    const { bytes, blob } = await blobFile(3 * CHUNK + 17);
    proxy.inject({ method: 'PATCH', nth: 2, action: 'drop-before-forwarding' });
    const progress: BlobProgress[] = [];
    await client().pushBlob(repository, blob, { onProgress: (p) => progress.push(p) });
    assert.ok(
      progress.some((p) => p.state === 'resuming' && p.sentBytes === CHUNK),
      JSON.stringify(progress),
    );
    assert.equal(proxy.forwardedBytes('PATCH'), blob.size);
    assert.deepEqual(await readBack(repository, blob.digest), bytes);
  });

  it('a connection dropped halfway through a chunk: the session the registry no longer vouches for is replaced, and the blob arrives whole', async () => {
    const repository = uniqueRepository('drop-mid');
    const { bytes, blob } = await blobFile(3 * CHUNK);
    proxy.inject({ method: 'PATCH', nth: 2, action: 'drop-mid-body' });
    const progress: BlobProgress[] = [];
    await client().pushBlob(repository, blob, { onProgress: (p) => progress.push(p) });
    const resumed = progress.find((p) => p.state === 'resuming');
    assert.ok(resumed, JSON.stringify(progress));
    // Half a chunk reached the registry before the cut; whatever it reported, the upload went on from
    // there (a registry that keeps the session) or from 0 in a new one (Debian's distribution).
    const posts = proxy.requests.filter((r) => r.method === 'POST').length;
    assert.equal(posts, resumed.sentBytes === 0 ? 2 : 1);
    assert.ok(proxy.forwardedBytes('PATCH') >= blob.size + CHUNK / 2);
    assert.deepEqual(await readBack(repository, blob.digest), bytes);
  });

  it('a 5xx on the manifest PUT is retried and the tag is written', async () => {
    const repository = uniqueRepository('manifest-503');
    const layer = await layerFromFiles([{ path: '/a.txt', bytes: randomBytes(1000) }], path.join(work, 'blobs'));
    const image = assembleImage([layer], {});
    proxy.inject({ method: 'PUT', pathIncludes: '/manifests/', nth: 1, action: 'status-503' });
    const pushed = await pushImage(image, proxy.url, repository, 'v1', {
      blobLocations: null,
      retry: FAST_RETRY,
      credentials: registry.credentials ?? null,
    });
    assert.equal(pushed.digest, image.digest);
    const manifestPuts = proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
    assert.deepEqual(
      manifestPuts.map((r) => r.status ?? r.fault),
      ['status-503', 201],
    );
    assert.equal((await new RegistryClient(registry.url).getManifest(repository, 'v1')).digest, image.digest);
  });

  it('a registry that vanishes mid-push: a clear error after the retries, and no tag', async () => {
    const repository = uniqueRepository('vanish');
    const layers = [
      await layerFromFiles([{ path: '/small.txt', bytes: randomBytes(100) }], path.join(work, 'blobs')),
      await layerFromFiles([{ path: '/big.bin', bytes: randomBytes(4 * CHUNK) }], path.join(work, 'blobs')),
    ];
    const image = assembleImage(layers, {});
    const gone = await FaultProxy.start(registry.url);
    gone.inject({ method: 'PATCH', nth: 3, action: 'vanish' });
    const started = Date.now();
    await assert.rejects(
      pushImage(image, gone.url, repository, 'v1', {
        blobLocations: null,
        chunkBytes: CHUNK,
        retry: FAST_RETRY,
        credentials: registry.credentials ?? null,
      }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError, String(error));
        assert.match(error.message, new RegExp(`^registry ${gone.url}: .*failed: .*(connection refused|ECONNRESET)`));
        assert.match(error.message, /attempts\)/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 20_000);
    // The registry itself (not the vanished proxy) has no tag and not the interrupted blob.
    const direct = new RegistryClient(registry.url);
    await assert.rejects(direct.getManifest(repository, 'v1'), (e: unknown) => (e as RegistryError).status === 404);
    assert.equal(await direct.blobExists(repository, layers[1]!.digest), false);
  });
});
