/**
 * Sealed image trees: once an image's layers are unpacked (and their digests checked, lib/oci/pull.ts),
 * the tree is made read-only and sealed — the sha256, size and mode of every file and the target of every
 * link, as the verified layers made them. Before a replica starts from the tree it is checked against its
 * seal, so a file changed, added or removed since (a write through some other hole, a hand edit) stops the
 * replica with an error naming it, instead of serving something other than the image's digest says.
 *
 * The check is cheap when nothing changed: a file whose inode, size and change time (ctime, which no
 * write or chmod can leave as it was) are those recorded at sealing is not read again; any other is
 * hashed. Extra directories are allowed (a container runtime may add mount points); extra files are not.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, readdir, readlink, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface SealedFile {
  sha256: string;
  size: number;
  /** Permission bits as sealed (read-only). */
  mode: number;
  /** inode:size:ctimeNs when sealed: a file that still has it was not touched. */
  stamp: string;
}

export interface TreeSeal {
  files: Record<string, SealedFile>;
  links: Record<string, string>;
}

/** The tree differs from its seal; `problems` name each path and what is wrong with it. */
export class ImageTreeModifiedError extends Error {
  readonly code = 'image_tree_modified';
  override name = 'ImageTreeModifiedError';
  constructor(
    readonly rootfs: string,
    readonly problems: string[],
  ) {
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    super(
      `the unpacked image at ${rootfs} was modified after it was checked against its layer digests (${shown}); ` +
        'no replica starts from it: delete the folder and apply the deployment again to pull it afresh',
    );
  }
}

const WRITE_BITS = 0o222;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function stampOf(file: string): Promise<string> {
  const st = await lstat(file, { bigint: true });
  return `${st.ino}:${st.size}:${st.ctimeNs}`;
}

type Entry = { rel: string; kind: 'file' | 'dir' | 'link' };

/** Every entry under `root`, parents before children, paths relative with '/'. */
async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const visit = async (relDir: string) => {
    const entries = await readdir(path.join(root, relDir), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const rel = relDir ? `${relDir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push({ rel, kind: 'dir' });
        await visit(rel);
      } else if (e.isSymbolicLink()) out.push({ rel, kind: 'link' });
      else if (e.isFile()) out.push({ rel, kind: 'file' });
      else throw new Error(`${path.join(root, rel)}: an image tree holds files, folders and links only`);
    }
  };
  await visit('');
  return out;
}

/** Makes the tree read-only (files and folders) and returns its seal. */
export async function sealImageTree(rootfs: string): Promise<TreeSeal> {
  const entries = await walk(rootfs);
  const seal: TreeSeal = { files: {}, links: {} };
  for (const e of entries) {
    const abs = path.join(rootfs, e.rel);
    if (e.kind === 'link') seal.links[e.rel] = await readlink(abs);
    if (e.kind !== 'file') continue;
    const st = await lstat(abs);
    const mode = st.mode & 0o7777 & ~WRITE_BITS;
    await chmod(abs, mode);
    seal.files[e.rel] = { sha256: await sha256Of(abs), size: st.size, mode, stamp: await stampOf(abs) };
  }
  // Folders last, deepest first: their write bits are needed until everything in them is done.
  for (const e of entries.filter((x) => x.kind === 'dir').reverse()) {
    const abs = path.join(rootfs, e.rel);
    await chmod(abs, (await lstat(abs)).mode & 0o7777 & ~WRITE_BITS);
  }
  await chmod(rootfs, (await lstat(rootfs)).mode & 0o7777 & ~WRITE_BITS);
  return seal;
}

/** Throws ImageTreeModifiedError unless the tree is as sealed. */
export async function verifyImageTree(rootfs: string, seal: TreeSeal): Promise<void> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const e of await walk(rootfs)) {
    const abs = path.join(rootfs, e.rel);
    if (e.kind === 'dir') continue;
    seen.add(e.rel);
    if (e.kind === 'link') {
      const want = seal.links[e.rel];
      if (want === undefined) problems.push(`${e.rel} was added`);
      else if ((await readlink(abs)) !== want) problems.push(`${e.rel} points elsewhere`);
      continue;
    }
    const want = seal.files[e.rel];
    if (!want) {
      problems.push(`${e.rel} was added`);
      continue;
    }
    const st = await lstat(abs);
    if ((st.mode & 0o7777) !== want.mode) problems.push(`${e.rel} has mode ${(st.mode & 0o7777).toString(8)}`);
    else if ((await stampOf(abs)) === want.stamp) continue;
    if (st.size !== want.size || (await sha256Of(abs)) !== want.sha256) problems.push(`${e.rel} has other content`);
  }
  for (const rel of [...Object.keys(seal.files), ...Object.keys(seal.links)]) {
    if (!seen.has(rel)) problems.push(`${rel} was removed`);
  }
  if (problems.length) throw new ImageTreeModifiedError(rootfs, problems);
}

/** Removes a tree made read-only by sealImageTree (its folders get their write bit back first). */
export async function removeImageTree(dir: string): Promise<void> {
  const restore = async (d: string): Promise<void> => {
    const st = await lstat(d).catch(() => undefined);
    if (!st?.isDirectory()) return;
    await chmod(d, (st.mode & 0o7777) | 0o700);
    for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) await restore(path.join(d, e.name));
  };
  await restore(dir);
  await rm(dir, { recursive: true, force: true });
}
