/**
 * Pushing to and pulling from registries that want credentials: Debian's docker-registry started by the
 * test with htpasswd (Basic) auth, and one with token auth backed by a token service of the test's own
 * (tokenServer.ts: the WWW-Authenticate Bearer realm/service/scope flow, RS256 JWTs the registry checks).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobLocations } from '../../lib/oci/blobLocations';
import { assembleImage, type BuiltImage } from '../../lib/oci/image';
import { layerFromFiles } from '../../lib/oci/layer';
import { pullImage } from '../../lib/oci/pull';
import { pushImage } from '../../lib/oci/push';
import { RegistryClient, RegistryError, type RetryPolicy } from '../../lib/oci/registry';
import { startPrivateRegistry, type TestRegistry, uniqueRepository } from './registryFixture';
import { TOKEN_SERVICE, TokenServer } from './tokenServer';

const USER = { username: 'ferry', password: 'ferry-test-secret' };
const WRONG = { username: 'ferry', password: 'not-the-password' };
/** bcrypt (cost 4, so each request's check is quick) of USER.password; the registry checks it. */
const HTPASSWD = 'ferry:$2b$04$JQd4x6vkamJamo2RA2F7AO5Io///KWeQfUJcHbBkZU7RHqCFb9o/u\n';
const FAST_RETRY: RetryPolicy = { attempts: 2, baseDelayMs: 20, maxDelayMs: 100 };

let work: string;
let image: BuiltImage;
const payload = randomBytes(200_000);

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-auth-test-'));
  const blobs = path.join(work, 'blobs');
  image = assembleImage(
    [
      await layerFromFiles([{ path: '/etc/hello.txt', bytes: Buffer.from('hello\n') }], blobs),
      await layerFromFiles([{ path: '/data/payload.bin', bytes: payload }], blobs),
    ],
    {},
  );
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function refusal(status: number, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.status, status);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes(USER.password) && !error.message.includes(WRONG.password), error.message);
    return true;
  };
}

async function pullAndCheck(url: string, repository: string, reference: string) {
  const dest = path.join(work, `pull-${randomBytes(4).toString('hex')}`);
  const pulled = await pullImage({ registry: url, repository, reference }, dest, { credentials: USER });
  assert.equal(pulled.digest, image.digest);
  assert.deepEqual(await readFile(path.join(pulled.rootfs, 'data', 'payload.bin')), payload);
}

describe('basic auth (htpasswd)', () => {
  let registry: TestRegistry;

  before(async () => {
    const htpasswd = path.join(work, 'htpasswd');
    await writeFile(htpasswd, HTPASSWD);
    registry = await startPrivateRegistry({ auth: ['  htpasswd:', '    realm: ferry-test', `    path: ${htpasswd}`] });
  });
  after(async () => registry?.stop());

  it('without credentials: a one-line refusal that says how to give them', async () => {
    await assert.rejects(
      pushImage(image, registry.url, uniqueRepository('basic'), 'v1', { blobLocations: null, credentials: null }),
      refusal(401, /wants credentials: --registry-user and --registry-password/),
    );
  });

  it('with a wrong password: refused, the password in no message, and no tag', async () => {
    const repository = uniqueRepository('basic-wrong');
    await assert.rejects(
      pushImage(image, registry.url, repository, 'v1', { blobLocations: null, credentials: WRONG, retry: FAST_RETRY }),
      refusal(401, /credentials for "ferry" refused/),
    );
    await assert.rejects(
      new RegistryClient(registry.url, { credentials: USER }).getManifest(repository, 'v1'),
      (e: unknown) => (e as RegistryError).status === 404,
    );
  });

  it('with the right credentials: pushed in chunks, pulled back', async () => {
    const repository = uniqueRepository('basic-ok');
    const pushed = await pushImage(image, registry.url, repository, 'v1', {
      blobLocations: null,
      credentials: USER,
      chunkBytes: 64 << 10,
    });
    assert.equal(pushed.digest, image.digest);
    assert.equal(pushed.pushedBytes, image.sizeBytes);
    await pullAndCheck(registry.url, repository, 'v1');
  });
});

describe('token auth (Bearer realm, service, scope)', () => {
  let registry: TestRegistry;
  let tokens: TokenServer;

  before(async () => {
    tokens = await TokenServer.start(work, USER);
    registry = await startPrivateRegistry({ auth: tokens.registryAuthConfig() });
  });
  after(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it('anonymous: the token service refuses, and the error names the realm and scope, not a secret', async () => {
    const repository = uniqueRepository('token-anon');
    await assert.rejects(
      pushImage(image, registry.url, repository, 'v1', { blobLocations: null, credentials: null }),
      refusal(401, new RegExp(`getting a token from ${tokens.realm} for repository:${repository}:pull,push: HTTP 401`)),
    );
  });

  it('a wrong password: refused', async () => {
    await assert.rejects(
      pushImage(image, registry.url, uniqueRepository('token-wrong'), 'v1', {
        blobLocations: null,
        credentials: WRONG,
      }),
      refusal(401, /credentials for "ferry" refused/),
    );
  });

  it('the right credentials: one token per scope, pushed, pulled, and mounted into another repository', async () => {
    const repository = uniqueRepository('token-ok');
    tokens.requests.length = 0;
    const locations = new BlobLocations(null);
    const pushed = await pushImage(image, registry.url, repository, 'v1', {
      blobLocations: locations,
      credentials: USER,
      chunkBytes: 64 << 10,
    });
    assert.equal(pushed.digest, image.digest);
    assert.equal(pushed.pushedBytes, image.sizeBytes);
    // Every request of the push needs the same scope: the token is asked for once and reused.
    assert.equal(tokens.requests.length, 1, JSON.stringify(tokens.requests));
    assert.deepEqual(tokens.requests[0], {
      service: TOKEN_SERVICE,
      scopes: [`repository:${repository}:pull,push`],
      account: USER.username,
      withCredentials: true,
      granted: true,
    });

    await pullAndCheck(registry.url, repository, 'v1');

    const other = uniqueRepository('token-mount');
    tokens.requests.length = 0;
    const copied = await pushImage(image, registry.url, other, 'v1', { blobLocations: locations, credentials: USER });
    assert.equal(copied.pushedBytes, 0);
    assert.equal(copied.mountedBytes, image.sizeBytes);
    // A mount needs pull on the source repository too: the registry's challenge says so.
    assert.ok(
      tokens.requests.some((r) => r.scopes.includes(`repository:${repository}:pull`)),
      JSON.stringify(tokens.requests),
    );
  });
});
