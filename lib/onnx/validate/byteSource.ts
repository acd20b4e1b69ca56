/**
 * Random-access reads of a model, from memory or from a file, so validation can walk a multi-gigabyte
 * file's structure while reading only the bytes it looks at (tensor payloads are skipped, not read).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset` (the caller keeps within `size`). The view may be reused by the next read. */
  read(offset: number, length: number): Uint8Array;
}

export function bufferSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
}

/** A file opened for positional reads; close it when done. */
export class FileSource implements ByteSource {
  readonly size: number;
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Uint8Array {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new Error(`the file ended at ${offset + done} bytes while reading to ${offset + length}`);
      done += n;
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Sequential reads through a window, so walking many small fields costs one system call per window. */
export class WindowedReader {
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;

  constructor(
    readonly source: ByteSource,
    private readonly windowBytes = 1 << 20,
  ) {}

  byteAt(offset: number): number {
    if (offset < this.windowStart || offset >= this.windowStart + this.window.length) this.fill(offset, 1);
    return this.window[offset - this.windowStart];
  }

  /** A copy of [offset, offset+length): callers keep it past the next read. */
  copy(offset: number, length: number): Uint8Array {
    if (offset < this.windowStart || offset + length > this.windowStart + this.window.length) {
      if (length > this.windowBytes) return new Uint8Array(this.source.read(offset, length));
      this.fill(offset, length);
    }
    const at = offset - this.windowStart;
    return new Uint8Array(this.window.subarray(at, at + length)); // a copy (Buffer's slice() would be a view)
  }

  private fill(offset: number, atLeast: number): void {
    const length = Math.min(Math.max(this.windowBytes, atLeast), this.source.size - offset);
    // Kept as read: a file read is a fresh buffer, and a buffer source's bytes do not change while walked.
    this.window = this.source.read(offset, length);
    this.windowStart = offset;
  }
}
