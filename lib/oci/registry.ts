/**
 * A small client for the OCI distribution API (the registry HTTP protocol).
 *
 * Uses node:http directly rather than fetch so uploads stream from disk with an exact
 * Content-Length, and so connection failures surface with their errno. Every error names the
 * registry URL and the operation, because "fetch failed" is not something a user can act on.
 *
 * Every request answers a registry's auth challenge (registryAuth.ts: Basic, or a Bearer token from the
 * realm it names) and is tried again after a dropped connection, a 5xx or a 429 (retry.ts). Blobs go up
 * in chunks that resume from the offset the registry reports (blobUpload.ts).
 */
import { stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import { loadConfig } from '../config';
import { type BlobProgress, DEFAULT_CHUNK_BYTES, uploadBlob } from './blobUpload';
import { isDigest, sha256Digest } from './digest';
import {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  hostArchitecture,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  type OciIndex,
  type OciManifest,
} from './image';
import { AuthError, pullScope, pushScope, RegistryAuth, type RegistryCredentials } from './registryAuth';
import { RegistryError } from './registryError';
import { DEFAULT_RETRY, isTransientNetworkError, isTransientStatus, type RetryPolicy, waitBeforeRetry } from './retry';

export type { BlobProgress } from './blobUpload';
export type { RegistryCredentials } from './registryAuth';
export { RegistryError } from './registryError';
export type { RetryPolicy } from './retry';

const MANIFEST_ACCEPT = [
  OCI_MANIFEST_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
].join(', ');
/** The distribution spec lets registries refuse manifests above 4 MiB; no real one is near that. */
const MAX_MANIFEST_BYTES = 4 << 20;
const REPOSITORY_PATTERN = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** A blob to upload: its digest and size, with the bytes in a file or in memory. */
export type BlobSource = { digest: string; size: number } & ({ path: string } | { bytes: Buffer });

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  json: string;
  document: OciManifest | OciIndex;
}

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: URL;
  headers?: Record<string, string | number>;
  /** A factory for a stream, so the request can be sent again after a challenge or a fault. */
  body?: Buffer | (() => Readable);
}

export interface RequestOptions {
  /** What the request needs, as token scopes: `repository:<name>:pull[,push]`, space-separated. */
  scope: string;
  /** Try again after a dropped connection, a 5xx or a 429 (default true; a chunk's PATCH resumes instead). */
  retry?: boolean;
}

export interface RegistryClientOptions {
  /** Per request: no answer within this long counts as a dropped connection. Default 60 s. */
  timeoutMs?: number;
  /**
   * Sent when the registry asks for them (never logged). Default: FERRY_REGISTRY_USER and
   * FERRY_REGISTRY_PASSWORD, for the configured registry only; null: anonymous.
   */
  credentials?: RegistryCredentials | null;
  /** Bytes per PATCH of a blob upload; default 16 MiB. */
  chunkBytes?: number;
  retry?: RetryPolicy;
}

export function assertRepository(repository: string): void {
  if (!REPOSITORY_PATTERN.test(repository) || repository.length > 255) {
    throw new Error(`invalid repository name "${repository}": lowercase letters, digits and separators (._-/) only`);
  }
}

export function assertReference(reference: string): void {
  if (!isDigest(reference) && !TAG_PATTERN.test(reference)) {
    throw new Error(
      `invalid image reference "${reference}": expected a tag ([A-Za-z0-9_.-], max 128) or a sha256 digest`,
    );
  }
}

/** The credentials the configuration gives for `registryUrl`: only ever the configured registry's. */
function configuredCredentials(registryUrl: string): RegistryCredentials | undefined {
  const { registry } = loadConfig();
  if (!registry.credentials) return undefined;
  return new URL(registry.url).origin === new URL(registryUrl).origin ? registry.credentials : undefined;
}

export class RegistryClient {
  readonly baseUrl: string;
  readonly chunkBytes: number;
  readonly retryPolicy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly auth: RegistryAuth;

  constructor(registryUrl: string, options: RegistryClientOptions = {}) {
    const parsed = new URL(registryUrl);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Error(`registry URL must be http(s)://host[:port], got "${registryUrl}"`);
    }
    if (parsed.username || parsed.password) {
      throw new Error('give registry credentials apart from its URL (--registry-user/--registry-password)');
    }
    this.baseUrl = parsed.origin;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 1) {
      throw new Error(`upload chunk size must be a positive number of bytes, got ${options.chunkBytes}`);
    }
    this.retryPolicy = options.retry ?? DEFAULT_RETRY;
    const credentials =
      options.credentials === null ? undefined : (options.credentials ?? configuredCredentials(registryUrl));
    this.auth = new RegistryAuth(credentials, async (url, headers) => {
      const res = await rawRequest({ method: 'GET', url, headers }, this.timeoutMs);
      const body = await readLimited(res, 1 << 20, () => undefined);
      return { status: res.statusCode ?? 0, body, headers: res.headers };
    });
  }

  /** GET /v2/ — succeeds when the registry is up, speaks the distribution API and lets us in. */
  async ping(): Promise<void> {
    const operation = 'checking the API version (GET /v2/)';
    const res = await this.request(operation, { method: 'GET', url: this.url('/v2/') }, { scope: '' });
    await this.expectStatus(res, [200], operation);
    res.resume();
  }

  async blobExists(repository: string, digest: string, scope = pullScope(repository)): Promise<boolean> {
    assertRepository(repository);
    const operation = `checking blob ${digest} in ${repository}`;
    const res = await this.request(
      operation,
      { method: 'HEAD', url: this.url(`/v2/${repository}/blobs/${digest}`) },
      { scope },
    );
    res.resume();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    await this.expectStatus(res, [200, 404], operation);
    return false;
  }

  /**
   * Uploads a blob unless the repository already has it (HEAD first). With `mountFrom`, first asks the
   * registry to mount it from that repository instead (a cross-repository mount: no bytes sent); a
   * registry that cannot (the blob is not there, or it does not mount) answers with an upload session,
   * which is then used for the upload. The upload goes in chunks (blobUpload.ts).
   */
  async pushBlob(
    repository: string,
    blob: BlobSource,
    options: { mountFrom?: string; onProgress?: (progress: BlobProgress) => void } = {},
  ): Promise<{ pushed: boolean; bytes: number; mountedFrom?: string }> {
    const scope = pushScope(repository);
    const report = (state: BlobProgress['state'], sentBytes: number) =>
      options.onProgress?.({ digest: blob.digest, size: blob.size, sentBytes, state });
    if (await this.blobExists(repository, blob.digest, scope)) {
      report('present', 0);
      return { pushed: false, bytes: 0 };
    }
    if ('path' in blob) {
      const { size } = await stat(blob.path);
      if (size !== blob.size) throw new Error(`blob file ${blob.path} is ${size} bytes, expected ${blob.size}`);
    } else if (blob.bytes.length !== blob.size) {
      throw new Error(`blob ${blob.digest} has ${blob.bytes.length} bytes, expected ${blob.size}`);
    }

    const from = options.mountFrom !== repository ? options.mountFrom : undefined;
    if (from !== undefined) assertRepository(from);
    const started = await this.startUpload(repository, from ? { digest: blob.digest, from } : undefined);
    if (started.mounted) {
      report('mounted', 0);
      return { pushed: false, bytes: 0, mountedFrom: from };
    }
    await uploadBlob(this, repository, blob, started.location, options.onProgress);
    return { pushed: true, bytes: blob.size };
  }

  /**
   * POST .../blobs/uploads/: a new upload session's URL, or `mounted` when the registry mounted the
   * blob from `mount.from` instead.
   */
  async startUpload(
    repository: string,
    mount?: { digest: string; from: string },
  ): Promise<{ mounted: true } | { mounted: false; location: URL }> {
    assertRepository(repository);
    const operation = mount
      ? `mounting ${mount.digest} from ${mount.from} into ${repository}`
      : `starting an upload to ${repository}`;
    const query = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
    const scope = mount ? `${pushScope(repository)} ${pullScope(mount.from)}` : pushScope(repository);
    const started = await this.request(
      operation,
      { method: 'POST', url: this.url(`/v2/${repository}/blobs/uploads/${query}`) },
      { scope },
    );
    await this.expectStatus(started, mount ? [201, 202] : [202], operation);
    started.resume();
    if (started.statusCode === 201) return { mounted: true };
    const location = started.headers.location;
    if (!location) throw new RegistryError(this.baseUrl, operation, 'the registry gave no upload Location');
    return { mounted: false, location: new URL(location, this.baseUrl) };
  }

  /** PUTs a manifest under `tag` and returns its digest (checked against the registry's own). */
  async putManifest(
    repository: string,
    tag: string,
    manifestJson: string,
    mediaType = OCI_MANIFEST_MEDIA_TYPE,
  ): Promise<string> {
    assertRepository(repository);
    assertReference(tag);
    const digest = sha256Digest(manifestJson);
    const operation = `putting manifest ${repository}:${tag}`;
    const res = await this.request(
      operation,
      {
        method: 'PUT',
        url: this.url(`/v2/${repository}/manifests/${tag}`),
        headers: { 'Content-Type': mediaType },
        body: Buffer.from(manifestJson),
      },
      { scope: pushScope(repository) },
    );
    await this.expectStatus(res, [201], operation);
    res.resume();
    const reported = res.headers['docker-content-digest'];
    if (typeof reported === 'string' && reported !== digest) {
      throw new RegistryError(this.baseUrl, operation, `registry stored digest ${reported}, expected ${digest}`);
    }
    return digest;
  }

  /** Fetches a manifest (or index) by tag or digest; its digest is verified against its bytes. */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    assertRepository(repository);
    assertReference(reference);
    const operation = `getting manifest ${repository}${isDigest(reference) ? '@' : ':'}${reference}`;
    // Without an OCI Accept header distribution answers 404 for OCI manifests, even by digest.
    const res = await this.request(
      operation,
      {
        method: 'GET',
        url: this.url(`/v2/${repository}/manifests/${reference}`),
        headers: { Accept: MANIFEST_ACCEPT },
      },
      { scope: pullScope(repository) },
    );
    await this.expectStatus(res, [200], operation);
    const bytes = await readLimited(
      res,
      MAX_MANIFEST_BYTES,
      () => new RegistryError(this.baseUrl, operation, 'manifest exceeds 4 MiB'),
    );
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && reference !== digest) {
      throw new RegistryError(this.baseUrl, operation, `content digest is ${digest}, not the requested ${reference}`);
    }
    const reported = res.headers['docker-content-digest'];
    if (typeof reported === 'string' && isDigest(reported) && reported !== digest) {
      throw new RegistryError(this.baseUrl, operation, `content digest is ${digest}, registry says ${reported}`);
    }
    const json = bytes.toString('utf8');
    let document: OciManifest | OciIndex;
    try {
      document = JSON.parse(json) as OciManifest | OciIndex;
    } catch {
      throw new RegistryError(this.baseUrl, operation, 'manifest is not valid JSON');
    }
    const mediaType =
      (document as { mediaType?: string }).mediaType ?? String(res.headers['content-type'] ?? '').split(';')[0]!;
    return { digest, mediaType, json, document };
  }

  /** Streams a blob's bytes (redirects followed). The caller must verify the digest. */
  async getBlob(repository: string, digest: string): Promise<Readable> {
    assertRepository(repository);
    if (!isDigest(digest)) throw new Error(`not a sha256 digest: "${digest}"`);
    const operation = `getting blob ${digest} from ${repository}`;
    const res = await this.request(
      operation,
      { method: 'GET', url: this.url(`/v2/${repository}/blobs/${digest}`) },
      { scope: pullScope(repository) },
    );
    await this.expectStatus(res, [200], operation);
    return res;
  }

  private url(pathname: string): URL {
    return new URL(pathname, this.baseUrl);
  }

  /**
   * One registry request, authorized for `scope` and, unless `retry` is false, tried again with backoff
   * after a dropped connection, a 5xx or a 429. Resolves with whatever the registry answered last; a
   * connection that never succeeded rejects with a RegistryError naming the operation.
   */
  async request(operation: string, spec: RequestSpec, options: RequestOptions): Promise<http.IncomingMessage> {
    const policy = this.retryPolicy;
    const attempts = options.retry === false ? 1 : Math.max(1, policy.attempts);
    for (let attempt = 1; ; attempt++) {
      let res: http.IncomingMessage;
      try {
        res = await this.authorizedSend(operation, spec, options.scope);
      } catch (error) {
        if (error instanceof RegistryError || attempt >= attempts || !isTransientNetworkError(error)) {
          throw this.unreachable(error, operation, spec, attempt);
        }
        await waitBeforeRetry(policy, attempt);
        continue;
      }
      const status = res.statusCode ?? 0;
      if (attempt < attempts && isTransientStatus(status)) {
        res.resume();
        await waitBeforeRetry(policy, attempt, res.headers['retry-after']);
        continue;
      }
      return res;
    }
  }

  private unreachable(error: unknown, operation: string, spec: RequestSpec, attempts: number): Error {
    if (error instanceof RegistryError) return error;
    const err = error as NodeJS.ErrnoException;
    // A blob file that cannot be read is this machine's problem, not the registry's.
    if (err.syscall === 'open' || err.syscall === 'read') return err;
    const why =
      err.code === 'ECONNREFUSED'
        ? 'connection refused — is the registry running? (infra/stack.sh start)'
        : (err.code ?? err.message);
    const tries = attempts > 1 ? `, ${attempts} attempts` : '';
    return new RegistryError(
      this.baseUrl,
      operation,
      `cannot reach ${spec.url.origin} (${why}${tries})`,
      undefined,
      err.code,
    );
  }

  /** Sends with the scope's Authorization; a 401 with a challenge is answered (registryAuth.ts) and sent once more. */
  private async authorizedSend(operation: string, spec: RequestSpec, scope: string): Promise<http.IncomingMessage> {
    const withAuth = (): RequestSpec => {
      const authorization = this.auth.header(scope);
      return authorization ? { ...spec, headers: { ...spec.headers, Authorization: authorization } } : spec;
    };
    const res = await this.send(operation, withAuth());
    if (res.statusCode !== 401) return res;
    let answered: boolean;
    try {
      answered = await this.auth.answer(headerValue(res.headers['www-authenticate']), scope);
    } catch (error) {
      res.resume();
      if (error instanceof AuthError) throw new RegistryError(this.baseUrl, operation, error.message, 401);
      throw new RegistryError(
        this.baseUrl,
        operation,
        `cannot get a token (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        401,
      );
    }
    if (!answered) return res;
    res.resume();
    return this.send(operation, withAuth());
  }

  /** One HTTP exchange; GET and HEAD follow redirects (without the Authorization, which is the registry's). */
  private async send(operation: string, spec: RequestSpec, redirects = 0): Promise<http.IncomingMessage> {
    const res = await rawRequest(spec, this.timeoutMs);
    const status = res.statusCode ?? 0;
    // Registries commonly redirect blob downloads to their storage backend.
    if (
      [301, 302, 303, 307, 308].includes(status) &&
      res.headers.location &&
      (spec.method === 'GET' || spec.method === 'HEAD')
    ) {
      res.resume();
      if (redirects >= 5) throw new RegistryError(this.baseUrl, operation, 'too many redirects');
      return this.send(
        operation,
        { ...spec, url: new URL(res.headers.location, spec.url), headers: undefined },
        redirects + 1,
      );
    }
    return res;
  }

  /** Throws a RegistryError with the registry's own error code unless the status is one of `expected`. */
  async expectStatus(res: http.IncomingMessage, expected: number[], operation: string): Promise<void> {
    const status = res.statusCode ?? 0;
    if (expected.includes(status)) return;
    const body = await readLimited(res, 64 << 10, () => undefined).catch(() => Buffer.alloc(0));
    let code: string | undefined;
    let detail = `HTTP ${status}`;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
      const first = parsed.errors?.[0];
      if (first) {
        code = first.code;
        detail += ` ${first.code ?? ''}: ${first.message ?? ''}`.trimEnd();
      }
    } catch {
      if (body.length > 0) detail += `: ${body.toString('utf8').slice(0, 200)}`;
    }
    if (status === 401) {
      detail += this.auth.credentials
        ? ` (credentials for "${this.auth.credentials.username}" refused)`
        : ' (this registry wants credentials: --registry-user and --registry-password, or FERRY_REGISTRY_USER and FERRY_REGISTRY_PASSWORD)';
    }
    throw new RegistryError(this.baseUrl, operation, detail, status, code);
  }
}

/** An image manifest resolved from a reference that may name an index (multi-platform image). */
export interface ResolvedImageManifest {
  /** Digest the reference names: the index's for a multi-platform image, else the manifest's. */
  resolvedDigest: string;
  /** Digest of the platform's image manifest. */
  digest: string;
  manifest: OciManifest;
}

/** The image manifest for `architecture` (linux) that `reference` names, going through an index if it is one. */
export async function resolveImageManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  architecture = hostArchitecture(),
): Promise<ResolvedImageManifest> {
  const top = await client.getManifest(repository, reference);
  if (top.mediaType !== OCI_INDEX_MEDIA_TYPE && top.mediaType !== DOCKER_MANIFEST_LIST_MEDIA_TYPE) {
    return { resolvedDigest: top.digest, digest: top.digest, manifest: top.document as OciManifest };
  }
  const entry = (top.document as OciIndex).manifests.find(
    (m) => m.platform?.architecture === architecture && m.platform?.os === 'linux',
  );
  if (!entry) {
    const has = (top.document as OciIndex).manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`);
    throw new Error(
      `${repository}@${top.digest} has no linux/${architecture} image (it has ${has.join(', ') || 'none'})`,
    );
  }
  const image = await client.getManifest(repository, entry.digest);
  if (!('layers' in image.document)) {
    throw new RegistryError(
      client.baseUrl,
      `getting manifest ${repository}@${entry.digest}`,
      'it is not an image manifest',
    );
  }
  return { resolvedDigest: top.digest, digest: image.digest, manifest: image.document };
}

/**
 * The image manifest `reference` names in `repository` (digest-verified when the reference is one); for
 * an index (multi-platform image), the manifest of `architecture` (default this machine's) it lists.
 */
export async function getManifest(
  registryUrl: string,
  repository: string,
  reference: string,
  architecture = hostArchitecture(),
): Promise<OciManifest> {
  return (await resolveImageManifest(new RegistryClient(registryUrl), repository, reference, architecture)).manifest;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function rawRequest(spec: RequestSpec, timeoutMs: number): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const transport = spec.url.protocol === 'https:' ? https : http;
    const req = transport.request(spec.url, { method: spec.method, headers: spec.headers }, resolve);
    req.on('error', reject);
    req.setTimeout(timeoutMs, () =>
      req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    if (spec.body === undefined) req.end();
    else if (Buffer.isBuffer(spec.body)) req.end(spec.body);
    else {
      const source = spec.body();
      source.on('error', (error) => req.destroy(error));
      source.pipe(req);
    }
  });
}

async function readLimited(stream: Readable, limit: number, tooLarge: () => Error | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      stream.destroy();
      const error = tooLarge();
      if (error) throw error;
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
