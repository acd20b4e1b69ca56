/**
 * Where a batch reads its requests and writes its outputs: a folder, or a bucket prefix of an
 * S3-compatible store (`s3://bucket/prefix`). Both list names relative to their root and write whole
 * objects only: a folder through a temporary file renamed into place, a bucket with one PutObject
 * (atomic in S3), so whatever a crash leaves behind is either complete or absent.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { FerryConfig } from '../../lib/config';
import { ObjectStore } from '../../lib/store/objectStore';
import { TEMP_PREFIX } from './batchFiles';

export interface BatchLocation {
  /** As the user wrote it, for messages. */
  readonly describe: string;
  /** Every file's name relative to the root ('/'-separated), in no particular order. */
  list(): Promise<string[]>;
  read(name: string): Promise<Buffer>;
  /** Writes the whole of `bytes` under `name`, or nothing. */
  write(name: string, bytes: Buffer | string): Promise<void>;
  /** Removes `name` if it is there. */
  remove(name: string): Promise<void>;
  /** Removes what an interrupted run may have left half-written (a folder's temporary files). */
  cleanUp(): Promise<void>;
}

/** The object store's endpoint and credentials; the bucket comes from each s3:// location. */
export type S3Settings = FerryConfig['s3'];

const S3_URL = /^s3:\/\/([^/]+)\/?(.*)$/;

export type LocationSpec = { kind: 'folder'; dir: string } | { kind: 'bucket'; bucket: string; prefix: string };

/** `s3://bucket[/prefix]` or a folder path. */
export function parseLocation(raw: string): LocationSpec {
  const m = S3_URL.exec(raw);
  if (raw.startsWith('s3://')) {
    if (!m || m[1] === '') throw new Error(`"${raw}" is not an s3://bucket/prefix location`);
    const prefix = m[2]!.replace(/\/+$/, '');
    return { kind: 'bucket', bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
  }
  if (raw.trim() === '') throw new Error('a batch location must be a folder or s3://bucket/prefix');
  return { kind: 'folder', dir: path.resolve(raw) };
}

export class FolderLocation implements BatchLocation {
  constructor(readonly dir: string) {}

  get describe(): string {
    return this.dir;
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      const entries = await readdir(path.join(this.dir, rel), { withFileTypes: true }).catch(
        (err: NodeJS.ErrnoException) => {
          // An output folder that does not exist yet holds nothing; the input must exist.
          if (err.code === 'ENOENT' && rel === '') return [];
          throw err;
        },
      );
      for (const e of entries) {
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(name);
        else if (e.isFile()) names.push(name);
      }
    };
    await walk('');
    return names;
  }

  read(name: string): Promise<Buffer> {
    return readFile(this.pathOf(name));
  }

  async write(name: string, bytes: Buffer | string): Promise<void> {
    const target = this.pathOf(name);
    await mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(path.dirname(target), `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(temp, bytes);
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
  }

  async remove(name: string): Promise<void> {
    await rm(this.pathOf(name), { force: true });
  }

  async cleanUp(): Promise<void> {
    for (const name of await this.list()) {
      if (path.posix.basename(name).startsWith(TEMP_PREFIX)) await rm(this.pathOf(name), { force: true });
    }
  }

  private pathOf(name: string): string {
    const full = path.resolve(this.dir, ...name.split('/'));
    if (!full.startsWith(`${this.dir}${path.sep}`)) throw new Error(`"${name}" is outside ${this.dir}`);
    return full;
  }
}

export class BucketLocation implements BatchLocation {
  private readonly store: ObjectStore;

  constructor(
    settings: Omit<S3Settings, 'bucket'>,
    readonly bucket: string,
    readonly prefix: string,
  ) {
    this.store = new ObjectStore({ ...settings, bucket });
  }

  get describe(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  async list(): Promise<string[]> {
    return (await this.store.list(this.prefix)).map((key) => key.slice(this.prefix.length));
  }

  read(name: string): Promise<Buffer> {
    return this.store.getBytes(this.prefix + name);
  }

  async write(name: string, bytes: Buffer | string): Promise<void> {
    await this.store.putBytes(this.prefix + name, Buffer.from(bytes));
  }

  async remove(name: string): Promise<void> {
    await this.store.delete(this.prefix + name);
  }

  async cleanUp(): Promise<void> {
    // A PutObject that did not finish leaves nothing behind.
  }
}

export function openLocation(spec: LocationSpec, s3: Omit<S3Settings, 'bucket'> | undefined): BatchLocation {
  if (spec.kind === 'folder') return new FolderLocation(spec.dir);
  if (!s3) throw new Error(`s3://${spec.bucket}/${spec.prefix} needs the object store's settings (FERRY_S3_*)`);
  return new BucketLocation(s3, spec.bucket, spec.prefix);
}
