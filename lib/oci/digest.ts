/**
 * Content digests as OCI writes them: `sha256:<64 hex>`. Only sha256 is produced or accepted;
 * anything else from a registry is refused rather than silently trusted.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

/** Throws unless `value` is a sha256 digest; returns its hex part (safe to use in a file name). */
export function digestHex(value: string): string {
  if (!isDigest(value)) throw new Error(`not a sha256 digest: "${value}"`);
  return value.slice('sha256:'.length);
}

export async function sha256File(filePath: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(filePath)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** A pass-through stream that hashes and counts what flows through it. */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  /** Valid once the stream has finished. */
  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}
