/**
 * Terminal rendering of an image's blobs as they are pushed or written: one line per blob when it is
 * done (pushed, already there, mounted, written), a line when an upload resumes after a fault, and on a
 * terminal a live bar for the blob being uploaded.
 */
import type { BlobProgress } from '../../lib/oci/registry';
import { bar, formatBytes } from './progress';

export class BlobProgressPrinter {
  private live = false;

  constructor(
    /** digest → what the blob is ("model tiny:1", "runtime linux/amd64", ...). */
    private readonly labels: ReadonlyMap<string, string>,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {}

  private label(digest: string): string {
    return this.labels.get(digest) ?? digest.slice(0, 19);
  }

  private line(text: string): void {
    this.clearLive();
    this.out.write(`${text}\n`);
  }

  private clearLive(): void {
    if (this.live) {
      this.out.write('\r\x1b[2K');
      this.live = false;
    }
  }

  /** For pushImage's onProgress. */
  push(p: BlobProgress): void {
    const what = `${this.label(p.digest).padEnd(32)} ${formatBytes(p.size).padStart(10)}`;
    if (p.state === 'present') this.line(`  exists   ${what}`);
    else if (p.state === 'mounted') this.line(`  mounted  ${what}`);
    else if (p.state === 'pushed') this.line(`  pushed   ${what}`);
    else if (p.state === 'resuming') {
      this.line(`  resuming ${this.label(p.digest)} at ${formatBytes(p.sentBytes)} after a fault`);
    } else if (this.out.isTTY) {
      this.clearLive();
      this.out.write(`  ${bar((100 * p.sentBytes) / Math.max(1, p.size))} ${this.label(p.digest)}`);
      this.live = true;
    }
  }

  /** For writeImageLayout's onBlob. */
  written(blob: { digest: string; size: number; written: boolean }): void {
    const what = `${this.label(blob.digest).padEnd(32)} ${formatBytes(blob.size).padStart(10)}`;
    this.line(`  ${blob.written ? 'wrote  ' : 'exists '}  ${what}`);
  }

  done(): void {
    this.clearLive();
  }
}
