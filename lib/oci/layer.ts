/**
 * Image layers: a deterministic tar, gzipped, written once to a content-addressed blob store.
 *
 * Both digests are computed in the same streaming pass: the diffId (sha256 of the tar, what the
 * image config lists) and the digest (sha256 of the gzip, what the manifest and registry use).
 * Node's gzip writes no file name and mtime 0; with a fixed level the same tar always gives the
 * same bytes on the same zlib, and the diffId does not depend on zlib at all.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { DigestingStream, digestHex } from './digest';
import { createTarStream, type TarEntry } from './tar';

export const OCI_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const GZIP_LEVEL = 6;

export interface LayerBlob {
  mediaType: typeof OCI_LAYER_MEDIA_TYPE;
  /** sha256 of the compressed blob (manifest, registry). */
  digest: string;
  /** sha256 of the uncompressed tar (image config rootfs.diff_ids). */
  diffId: string;
  /** Compressed size in bytes. */
  size: number;
  /** Size of the uncompressed tar in bytes. */
  uncompressedSize: number;
  /** Where the compressed blob is on disk. */
  blobPath: string;
  /** Written into the layer's descriptor in the manifest (what the layer holds, for `ferry image inspect`). */
  annotations?: Record<string, string>;
}

/** A file to place in a layer: `path` is its path inside the image ("/models/a/model.onnx"). */
export type LayerFile =
  | { path: string; sourcePath: string; executable?: boolean }
  | { path: string; bytes: Buffer; executable?: boolean };

/** Where a blob with this digest lives in a store laid out like an OCI image layout's blobs/. */
export function blobPathFor(blobDir: string, digest: string): string {
  return path.join(blobDir, 'sha256', digestHex(digest));
}

/** Writes the layer for `entries` into `blobDir` (created if needed) and describes it. */
export async function writeLayer(entries: readonly TarEntry[], blobDir: string): Promise<LayerBlob> {
  await mkdir(path.join(blobDir, 'sha256'), { recursive: true });
  const tempPath = path.join(blobDir, 'sha256', `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const tarDigest = new DigestingStream();
  const gzipDigest = new DigestingStream();
  try {
    await pipeline(
      createTarStream(entries),
      tarDigest,
      createGzip({ level: GZIP_LEVEL }),
      gzipDigest,
      createWriteStream(tempPath),
    );
    const digest = gzipDigest.digest();
    const blobPath = blobPathFor(blobDir, digest);
    await rename(tempPath, blobPath); // atomic: a reader never sees a half-written blob
    return {
      mediaType: OCI_LAYER_MEDIA_TYPE,
      digest,
      diffId: tarDigest.digest(),
      size: gzipDigest.size,
      uncompressedSize: tarDigest.size,
      blobPath,
    };
  } finally {
    await rm(tempPath, { force: true });
  }
}

/** A layer from files given by their path in the image and a source file or bytes. */
export function layerFromFiles(files: readonly LayerFile[], blobDir: string): Promise<LayerBlob> {
  return writeLayer(
    files.map((f): TarEntry => ({ type: 'file', ...f })),
    blobDir,
  );
}

/** Tar entries for everything under `dir`, placed at `imagePath` ("/" by default) in the image. */
export async function directoryEntries(dir: string, imagePath = '/'): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const prefix = imagePath.replace(/^\/+|\/+$/g, '');
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of await readdir(abs)) {
      const childAbs = path.join(abs, name);
      const childRel = rel ? `${rel}/${name}` : name;
      const inImage = prefix ? `${prefix}/${childRel}` : childRel;
      const info = await lstat(childAbs);
      if (info.isSymbolicLink()) entries.push({ type: 'symlink', path: inImage, target: await readlink(childAbs) });
      else if (info.isDirectory()) {
        entries.push({ type: 'directory', path: inImage });
        await walk(childAbs, childRel);
      } else if (info.isFile()) entries.push({ type: 'file', path: inImage, sourcePath: childAbs });
      else throw new Error(`cannot put ${childAbs} in a layer: not a file, directory or symlink`);
    }
  };
  if (!(await stat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
  await walk(dir, '');
  return entries;
}

/** A layer holding the contents of `dir` at `imagePath` in the image. */
export async function layerFromDirectory(dir: string, blobDir: string, imagePath = '/'): Promise<LayerBlob> {
  return writeLayer(await directoryEntries(dir, imagePath), blobDir);
}
