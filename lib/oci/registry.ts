/**
 * A small client for the OCI distribution API (the registry HTTP protocol).
 *
 * Uses node:http directly rather than fetch so uploads stream from disk with an exact
 * Content-Length, and so connection failures surface with their errno. Every error names the
 * registry URL and the operation, because "fetch failed" is not something a user can act on.
 * Anonymous access only: a registry that asks for credentials gets a clear error.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
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

export class RegistryError extends Error {
  constructor(
    readonly registryUrl: string,
    readonly operation: string,
    detail: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(`registry ${registryUrl}: ${operation} failed: ${detail}`);
    this.name = 'RegistryError';
  }
}

/** A blob to upload: its digest and size, with the bytes in a file or in memory. */
export type BlobSource = { digest: string; size: number } & ({ path: string } | { bytes: Buffer });

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  json: string;
  document: OciManifest | OciIndex;
}

interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  url: URL;
  headers?: Record<string, string | number>;
  body?: Buffer | (() => Readable);
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

export class RegistryClient {
  readonly baseUrl: string;

  constructor(
    registryUrl: string,
    private readonly timeoutMs = 60_000,
  ) {
    const parsed = new URL(registryUrl);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Error(`registry URL must be http(s)://host[:port], got "${registryUrl}"`);
    }
    this.baseUrl = parsed.origin;
  }

  /** GET /v2/ — succeeds when the registry is up and speaks the distribution API. */
  async ping(): Promise<void> {
    const res = await this.send('checking the API version (GET /v2/)', { method: 'GET', url: this.url('/v2/') });
    await this.expectStatus(res, [200], 'checking the API version (GET /v2/)');
    res.resume();
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    assertRepository(repository);
    const operation = `checking blob ${digest} in ${repository}`;
    const res = await this.send(operation, { method: 'HEAD', url: this.url(`/v2/${repository}/blobs/${digest}`) });
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
   * which is then used for the upload.
   */
  async pushBlob(
    repository: string,
    blob: BlobSource,
    options: { mountFrom?: string } = {},
  ): Promise<{ pushed: boolean; bytes: number; mountedFrom?: string }> {
    if (await this.blobExists(repository, blob.digest)) return { pushed: false, bytes: 0 };
    if ('path' in blob) {
      const { size } = await stat(blob.path);
      if (size !== blob.size) throw new Error(`blob file ${blob.path} is ${size} bytes, expected ${blob.size}`);
    } else if (blob.bytes.length !== blob.size) {
      throw new Error(`blob ${blob.digest} has ${blob.bytes.length} bytes, expected ${blob.size}`);
    }

    const from = options.mountFrom !== repository ? options.mountFrom : undefined;
    if (from !== undefined) assertRepository(from);
    const startOp = from
      ? `mounting ${blob.digest} from ${from} into ${repository}`
      : `starting an upload of ${blob.digest} to ${repository}`;
    const query = from ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}` : '';
    const started = await this.send(startOp, {
      method: 'POST',
      url: this.url(`/v2/${repository}/blobs/uploads/${query}`),
    });
    await this.expectStatus(started, from ? [201, 202] : [202], startOp);
    started.resume();
    if (started.statusCode === 201) return { pushed: false, bytes: 0, mountedFrom: from };
    const location = started.headers.location;
    if (!location) throw new RegistryError(this.baseUrl, startOp, 'the registry gave no upload Location');

    // Location may be relative and may already carry a query (distribution adds _state=...).
    // Append rather than rebuild the query: the upload state must go back byte for byte.
    const sessionUrl = new URL(location, this.baseUrl);
    const uploadUrl = new URL(
      `${sessionUrl.href}${sessionUrl.search ? '&' : '?'}digest=${encodeURIComponent(blob.digest)}`,
    );
    const putOp = `uploading blob ${blob.digest} (${blob.size} bytes) to ${repository}`;
    const done = await this.send(putOp, {
      method: 'PUT',
      url: uploadUrl,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.size },
      body: 'path' in blob ? () => createReadStream(blob.path) : blob.bytes,
    });
    await this.expectStatus(done, [201], putOp);
    done.resume();
    return { pushed: true, bytes: blob.size };
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
    const res = await this.send(operation, {
      method: 'PUT',
      url: this.url(`/v2/${repository}/manifests/${tag}`),
      headers: { 'Content-Type': mediaType },
      body: Buffer.from(manifestJson),
    });
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
    const res = await this.send(operation, {
      method: 'GET',
      url: this.url(`/v2/${repository}/manifests/${reference}`),
      headers: { Accept: MANIFEST_ACCEPT },
    });
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
    const res = await this.send(operation, { method: 'GET', url: this.url(`/v2/${repository}/blobs/${digest}`) });
    await this.expectStatus(res, [200], operation);
    return res;
  }

  private url(pathname: string): URL {
    return new URL(pathname, this.baseUrl);
  }

  private async send(operation: string, spec: RequestSpec, redirects = 0): Promise<http.IncomingMessage> {
    let res: http.IncomingMessage;
    try {
      res = await rawRequest(spec, this.timeoutMs);
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      const why =
        err.code === 'ECONNREFUSED'
          ? 'connection refused — is the registry running? (infra/stack.sh start)'
          : (err.code ?? err.message);
      throw new RegistryError(this.baseUrl, operation, `cannot reach ${spec.url.origin} (${why})`);
    }
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

  private async expectStatus(res: http.IncomingMessage, expected: number[], operation: string): Promise<void> {
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
    if (status === 401) detail += ' (this registry wants credentials; Ferry only supports anonymous access for now)';
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
  if (!entry) throw new Error(`${repository}@${top.digest} has no linux/${architecture} image`);
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
