/**
 * Extracts an untrusted tar stream into a directory.
 *
 * Layers come from a registry, so every entry is hostile until checked: names must stay inside the
 * destination (no absolute paths, no ".."), nothing is ever written through a symlink (each parent
 * is lstat'ed, files are created with O_EXCL), symlinks and hard links must point inside the tree,
 * and device nodes are refused. Modes are kept minus setuid/setgid/sticky; owners are not applied.
 */
import { createWriteStream } from 'node:fs';
import { chmod, link, lstat, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readTar, type TarReadEntry } from './tar';

export class UnsafeTarEntryError extends Error {
  constructor(entryPath: string, reason: string) {
    super(`refusing tar entry ${JSON.stringify(entryPath)}: ${reason}`);
    this.name = 'UnsafeTarEntryError';
  }
}

export interface ExtractOptions {
  /** Apply OCI whiteouts (".wh.<name>" deletes <name>, ".wh..wh..opq" empties the directory). */
  whiteouts?: boolean;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_WHITEOUT = '.wh..wh..opq';

/** The entry's path relative to the destination, or '' for the root itself; throws if it escapes. */
function safeRelativePath(raw: string): string {
  if (raw.includes('\0')) throw new UnsafeTarEntryError(raw, 'name contains NUL');
  if (raw.startsWith('/')) throw new UnsafeTarEntryError(raw, 'absolute path');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafeTarEntryError(raw, 'path contains ".."');
  return parts.join('/');
}

async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Creates missing parents of `rel` as real directories; refuses to pass through a symlink. */
async function ensureParents(root: string, rel: string, entryPath: string, create: boolean): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let current = root;
  for (const part of parts) {
    current = path.join(current, part);
    const info = await lstatOrNull(current);
    if (info === null) {
      if (!create) throw new UnsafeTarEntryError(entryPath, `parent ${part} does not exist`);
      await mkdir(current, { mode: 0o755 });
    } else if (info.isSymbolicLink()) {
      throw new UnsafeTarEntryError(entryPath, 'a parent directory is a symlink (would write outside the tree)');
    } else if (!info.isDirectory()) {
      throw new UnsafeTarEntryError(entryPath, `parent ${part} is not a directory`);
    }
  }
}

/** Clears whatever is at `target` unless both it and the new entry are directories. */
async function clearTarget(target: string, keepDirectory: boolean): Promise<void> {
  const info = await lstatOrNull(target);
  if (info === null) return;
  if (info.isDirectory() && keepDirectory) return;
  // rm never follows a symlink: it removes the link itself.
  await rm(target, { recursive: true, force: true });
}

function checkLinkTarget(entry: TarReadEntry, rel: string): void {
  if (entry.linkTarget === '') throw new UnsafeTarEntryError(entry.path, 'link has an empty target');
  if (path.posix.isAbsolute(entry.linkTarget)) {
    // Inside a container it would resolve within the rootfs, but any host process reading the tree
    // would follow it out of it, so absolute targets are refused.
    throw new UnsafeTarEntryError(entry.path, `link target ${entry.linkTarget} is absolute`);
  }
  const base = entry.kind === 'symlink' ? path.posix.dirname(rel) : '.';
  const resolved = path.posix.normalize(path.posix.join(base, entry.linkTarget));
  if (resolved === '..' || resolved.startsWith('../')) {
    throw new UnsafeTarEntryError(entry.path, `link target ${entry.linkTarget} points outside the tree`);
  }
}

/** Extracts `source` (an uncompressed tar stream) into `destDir`, which must exist. */
export async function extractTar(
  source: AsyncIterable<Buffer | Uint8Array>,
  destDir: string,
  options: ExtractOptions = {},
): Promise<{ entries: number }> {
  const root = path.resolve(destDir);
  const writtenThisLayer = new Set<string>();
  const directoryModes: Array<[string, number]> = [];
  let entries = 0;

  for await (const entry of readTar(source)) {
    const rel = safeRelativePath(entry.path);
    if (rel === '') continue; // "./" — the destination itself
    entries++;
    await ensureParents(root, rel, entry.path, true);
    const target = path.join(root, rel);
    const name = path.posix.basename(rel);

    if (options.whiteouts && name.startsWith(WHITEOUT_PREFIX)) {
      const dirRel = path.posix.dirname(rel);
      const dir = path.join(root, dirRel);
      if (name === OPAQUE_WHITEOUT) {
        // Hide lower layers' children of this directory, but not what this layer already wrote.
        for (const child of await readdir(dir)) {
          const childRel = dirRel === '.' ? child : `${dirRel}/${child}`;
          if (!writtenThisLayer.has(childRel)) await rm(path.join(dir, child), { recursive: true, force: true });
        }
      } else {
        const hidden = name.slice(WHITEOUT_PREFIX.length);
        if (hidden === '' || hidden === '.' || hidden === '..')
          throw new UnsafeTarEntryError(entry.path, 'bad whiteout');
        await rm(path.join(dir, hidden), { recursive: true, force: true });
      }
      continue;
    }

    const mode = entry.mode & 0o777; // drop setuid/setgid/sticky from untrusted input
    switch (entry.kind) {
      case 'directory':
        await clearTarget(target, true);
        if ((await lstatOrNull(target)) === null) await mkdir(target, { mode: 0o755 });
        directoryModes.push([target, mode]);
        break;
      case 'file':
        await clearTarget(target, false);
        // 'wx' = O_CREAT|O_EXCL: fails instead of following a symlink planted at the target.
        await pipeline(Readable.from(entry.content), createWriteStream(target, { flags: 'wx', mode }));
        await chmod(target, mode); // the umask may have masked bits off
        break;
      case 'symlink':
        checkLinkTarget(entry, rel);
        await clearTarget(target, false);
        await symlink(entry.linkTarget, target);
        break;
      case 'hardlink': {
        checkLinkTarget(entry, rel);
        const linkRel = safeRelativePath(entry.linkTarget);
        await ensureParents(root, linkRel, entry.path, false);
        const existing = await lstatOrNull(path.join(root, linkRel));
        if (!existing?.isFile())
          throw new UnsafeTarEntryError(entry.path, `hard link target ${linkRel} is not a file in the tree`);
        await clearTarget(target, false);
        await link(path.join(root, linkRel), target);
        break;
      }
      default:
        throw new UnsafeTarEntryError(
          entry.path,
          `unsupported entry type "${entry.typeflag}" (devices and fifos are refused)`,
        );
    }
    writtenThisLayer.add(rel);
  }
  // Directory modes last, so a read-only directory in the archive does not block its own children.
  for (const [dir, mode] of directoryModes.reverse()) await chmod(dir, mode);
  return { entries };
}
