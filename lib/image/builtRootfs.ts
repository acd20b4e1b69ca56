/**
 * A just-built image's root filesystem, unpacked from its layer blobs on disk — no download: the
 * registry holds the same bytes under the same digests — for the container stage's smoke test.
 *
 * The runtime layer (the bottom one: node, its libraries, onnxruntime; ~140 MB, the same for every model
 * image of a platform) is unpacked once into `<cacheDir>/rootfs/<its diffId>` and hard-linked into each
 * root filesystem (`cp -al`: directories are new, files are links), which takes milliseconds instead of
 * seconds of gunzip and untar; the small layers above it are unpacked on top. The cache stays intact:
 * unpacking a layer replaces a file by removing the name and creating a new file (lib/oci/tarExtract.ts,
 * O_EXCL), never by writing through it, and a container's root is mounted read-only. Where the tree
 * cannot be linked (another filesystem), the runtime layer is unpacked in place.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { digestHex } from '../oci/digest';
import type { BuiltImage } from '../oci/image';
import type { LayerBlob } from '../oci/layer';
import { type PulledImage, unpackLayer } from '../oci/pull';

const execFileP = promisify(execFile);
/** Unpacked runtime layers kept (the most recently used): one per platform and runtime version in use. */
const TREES_KEPT = 4;

async function unpack(layer: LayerBlob, rootfs: string): Promise<void> {
  await unpackLayer(layer.blobPath, layer, layer.diffId, rootfs);
}

/** The cached unpacked tree of `layer`, made if missing; its mtime says when it was last used. */
async function cachedTree(layer: LayerBlob, cacheRoot: string): Promise<string> {
  const tree = path.join(cacheRoot, digestHex(layer.diffId));
  if (
    !(await stat(tree).then(
      () => true,
      () => false,
    ))
  ) {
    await mkdir(cacheRoot, { recursive: true });
    const temp = `${tree}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(temp, { mode: 0o755 });
      await unpack(layer, temp);
      // Another process may have made it meanwhile: then its tree stays and this one goes.
      await rename(temp, tree).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
    await pruneTrees(cacheRoot);
  }
  const now = new Date();
  await utimes(tree, now, now);
  return tree;
}

async function pruneTrees(cacheRoot: string): Promise<void> {
  const trees: Array<{ dir: string; used: number }> = [];
  for (const name of await readdir(cacheRoot)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const dir = path.join(cacheRoot, name);
    trees.push({ dir, used: (await stat(dir)).mtimeMs });
  }
  trees.sort((a, b) => b.used - a.used);
  for (const { dir } of trees.slice(TREES_KEPT)) await rm(dir, { recursive: true, force: true });
}

/**
 * Unpacks `image` into `<destDir>/rootfs`. `resolvedDigest`: what the image is pushed as (its index's
 * digest, for a multi-platform image).
 */
export async function unpackBuiltImage(
  image: BuiltImage,
  destDir: string,
  opts: { cacheDir: string; resolvedDigest?: string },
): Promise<PulledImage> {
  const [base, ...upper] = image.layers;
  if (!base) throw new Error(`image ${image.digest} has no layers`);
  const rootfs = path.join(destDir, 'rootfs');
  await mkdir(destDir, { recursive: true });
  const tree = await cachedTree(base, path.join(opts.cacheDir, 'rootfs'));
  try {
    await execFileP('cp', ['-al', tree, rootfs]);
  } catch {
    await rm(rootfs, { recursive: true, force: true });
    await mkdir(rootfs, { mode: 0o755 });
    await unpack(base, rootfs);
  }
  for (const layer of upper) await unpack(layer, rootfs);
  return { digest: image.digest, resolvedDigest: opts.resolvedDigest ?? image.digest, config: image.config, rootfs };
}
