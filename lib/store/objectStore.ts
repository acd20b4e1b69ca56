/**
 * Ferry's artifact store: any S3-compatible service (SeaweedFS in the dev stack).
 * Model files are streamed in and out — never buffered whole on the way up — and stored
 * content-addressed by sha256 so the same bytes are kept once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { type FerryConfig, silenceAwsSdkNodeVersionNotice } from '../config';

export interface StoredObject {
  key: string;
  sha256: string;
  sizeBytes: number;
}

export class ObjectStoreUnavailableError extends Error {}

export class ObjectStore {
  readonly client: S3Client;
  constructor(readonly s3: FerryConfig['s3']) {
    silenceAwsSdkNodeVersionNotice();
    this.client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      maxAttempts: 2,
    });
  }

  get bucket(): string {
    return this.s3.bucket;
  }

  /** Streams a file into `key` with a multipart upload, hashing it on the way. */
  async putFile(key: string, filePath: string, onProgress?: (loadedBytes: number) => void): Promise<StoredObject> {
    return this.putStream(key, createReadStream(filePath), onProgress);
  }

  async putStream(key: string, body: Readable, onProgress?: (loadedBytes: number) => void): Promise<StoredObject> {
    const hash = createHash('sha256');
    let sizeBytes = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        sizeBytes += chunk.length;
        done(null, chunk);
      },
    });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body.pipe(hashing) },
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
    });
    if (onProgress) upload.on('httpUploadProgress', (p) => onProgress(p.loaded ?? 0));
    await this.wrap(`upload of ${key}`, () => upload.done());
    return { key, sha256: hash.digest('hex'), sizeBytes };
  }

  async putBytes(key: string, bytes: Uint8Array): Promise<StoredObject> {
    return this.putStream(key, Readable.from([Buffer.from(bytes)]));
  }

  async getBytes(key: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
    const res = await this.wrap(`download of ${key}`, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })),
    );
    if ((res.ContentLength ?? 0) > maxBytes) {
      throw new Error(`object ${key} is ${res.ContentLength} bytes, more than the limit of ${maxBytes}`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of res.Body as Readable) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Downloads to `filePath` atomically (temp file + rename) so a crash never leaves half a model. */
  async getFile(key: string, filePath: string): Promise<void> {
    const res = await this.wrap(`download of ${key}`, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })),
    );
    await mkdir(path.dirname(filePath), { recursive: true });
    const tmp = `${filePath}.part-${process.pid}`;
    try {
      await pipeline(res.Body as Readable, createWriteStream(tmp));
      await rename(tmp, filePath);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.describe(`lookup of ${key}`, err);
    }
  }

  async copy(fromKey: string, toKey: string): Promise<void> {
    await this.wrap(`copy of ${fromKey}`, () =>
      this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: toKey, CopySource: `${this.bucket}/${fromKey}` }),
      ),
    );
  }

  async delete(key: string): Promise<void> {
    await this.wrap(`delete of ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    );
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.wrap(`listing of ${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  private async wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.describe(what, err);
    }
  }

  private describe(what: string, err: unknown): Error {
    if (isUnreachable(err)) {
      return new ObjectStoreUnavailableError(
        `object store at ${this.s3.endpoint} is not reachable (${what}); start the dev stack with: bash infra/stack.sh start`,
      );
    }
    if (err instanceof Error) {
      // Without keys every request is refused: say where they come from rather than just "denied".
      const hint = this.s3.accessKeyId
        ? ''
        : ' (no S3 keys: set FERRY_S3_ACCESS_KEY and FERRY_S3_SECRET_KEY, or start the dev stack, which makes them)';
      err.message = `${what} in bucket ${this.bucket} failed: ${err.message}${hint}`;
      return err;
    }
    return new Error(`${what} failed: ${String(err)}`);
  }
}

/**
 * The store did not answer: the connection was refused (Node's `code`, also on an AggregateError when
 * every address of a host refused, and on a wrapped `cause`) or the SDK timed out.
 */
function isUnreachable(err: unknown, depth = 0): boolean {
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e !== 'object' || e === null || depth > 4) return false;
  if (e.code === 'ECONNREFUSED' || e.name === 'TimeoutError') return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isUnreachable(inner, depth + 1))) return true;
  return isUnreachable(e.cause, depth + 1);
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

/** Where each kind of artifact lives in the bucket. One place, so keys never drift apart. */
export const objectKeys = {
  staging: (uploadId: string) => `uploads/${uploadId}.onnx`,
  model: (sha256: string) => `models/sha256/${sha256}.onnx`,
};
