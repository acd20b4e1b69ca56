/**
 * Which repositories of a registry are known to hold a blob, so a push into a new repository can ask the
 * registry to mount the blob from one of them instead of uploading it again (the 55 MB runtime layer
 * that every Ferry image shares, above all).
 *
 * Kept in one small JSON file per cache (default `<cacheDir>/registry-blobs.json`), written atomically.
 * It is only a hint: a lost update (two pushes at once) or a stale entry (the repository was deleted,
 * the registry wiped) costs an upload, never a wrong image, since the registry checks every mount.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { loadConfig } from '../config';

/** Per registry, the most recently pushed blobs; older ones are forgotten. */
const MAX_DIGESTS_PER_REGISTRY = 4096;
const MAX_REPOSITORIES_PER_DIGEST = 4;

type Table = Record<string, Record<string, string[]>>;

export class BlobLocations {
  private table: Table | null = null;

  /** `file` null keeps the table in memory only. */
  constructor(readonly file: string | null) {}

  private async load(): Promise<Table> {
    if (this.table) return this.table;
    let table: Table = {};
    if (this.file) {
      try {
        const parsed = JSON.parse(await readFile(this.file, 'utf8')) as { registries?: Table };
        if (parsed && typeof parsed.registries === 'object' && parsed.registries !== null) table = parsed.registries;
      } catch {
        // missing or unreadable: start afresh, it is only a hint
      }
    }
    this.table = table;
    return table;
  }

  /** Repositories of `registry` last seen holding `digest`, most recent first, `exclude` left out. */
  async repositoriesWith(registry: string, digest: string, exclude?: string): Promise<string[]> {
    const table = await this.load();
    return (table[registry]?.[digest] ?? []).filter((r) => r !== exclude);
  }

  /** Notes that these blobs are in `repository` now (call save() to keep it). */
  async remember(registry: string, repository: string, digests: Iterable<string>): Promise<void> {
    const table = await this.load();
    table[registry] ??= {};
    const blobs = table[registry];
    for (const digest of digests) {
      const repos = [repository, ...(blobs[digest] ?? []).filter((r) => r !== repository)];
      delete blobs[digest]; // re-inserted last: object key order is recency
      blobs[digest] = repos.slice(0, MAX_REPOSITORIES_PER_DIGEST);
    }
    const keys = Object.keys(blobs);
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_DIGESTS_PER_REGISTRY))) delete blobs[old];
  }

  /** Merges this table into the file's current one and writes it back. */
  async save(): Promise<void> {
    if (!this.file || !this.table) return;
    const mine = this.table;
    this.table = null;
    const current = await this.load(); // what other processes wrote meanwhile
    for (const [registry, blobs] of Object.entries(mine)) {
      for (const [digest, repos] of Object.entries(blobs)) {
        for (const repo of [...repos].reverse()) await this.remember(registry, repo, [digest]);
      }
    }
    await mkdir(path.dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify({ version: 1, registries: current }));
    await rename(temp, this.file);
  }
}

let shared: BlobLocations | undefined;

/** The process-wide table, kept in `<cacheDir>/registry-blobs.json`. */
export function defaultBlobLocations(): BlobLocations {
  shared ??= new BlobLocations(path.join(loadConfig().cacheDir, 'registry-blobs.json'));
  return shared;
}
