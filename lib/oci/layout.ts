/**
 * OCI image layouts on disk (the image-spec's image-layout.md): what `ferry image build --out DIR` writes
 * and what `ferry image inspect|run DIR` read.
 *
 *   DIR/oci-layout          {"imageLayoutVersion":"1.0.0"}
 *   DIR/index.json          an index naming the image, with its tag as org.opencontainers.image.ref.name
 *   DIR/blobs/sha256/<hex>  layers, configs, manifests and (multi-platform) the image's own index
 *
 * Blobs go in first and index.json last (written whole, then renamed), like a push's tag: a layout
 * whose writing was interrupted names no image with missing blobs. Reading checks every blob's digest.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { digestHex, sha256Digest, sha256File } from './digest';
import {
  type BuiltImage,
  type BuiltImageIndex,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  isImageIndex,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  type OciDescriptor,
  type OciIndex,
  type OciManifest,
} from './image';

export const LAYOUT_VERSION = '1.0.0';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const IMAGE_DOCUMENT_TYPES = new Set([
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
]);
/** Manifests, indexes and configs read into memory are refused above this. */
const MAX_DOCUMENT_BYTES = 8 << 20;

export function layoutBlobPath(dir: string, digest: string): string {
  return path.join(dir, 'blobs', 'sha256', digestHex(digest));
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

export async function isImageLayout(dir: string): Promise<boolean> {
  return exists(path.join(dir, 'oci-layout'));
}

export interface WrittenLayout {
  /** What index.json names: the image index for a multi-platform image, else the manifest. */
  digest: string;
  /** Blobs written (those already in the layout are not counted). */
  writtenBytes: number;
}

export interface WriteLayoutOptions {
  /** The tag index.json gives the image (org.opencontainers.image.ref.name); default "latest". */
  tag?: string;
  /** Called after each blob is in place. */
  onBlob?: (blob: { digest: string; size: number; written: boolean }) => void;
}

/**
 * Writes `image` as an OCI image layout in `dir` (created, or an existing layout, whose index.json then
 * names this image only). A folder that holds something else is refused.
 */
export async function writeImageLayout(
  image: BuiltImage | BuiltImageIndex,
  dir: string,
  options: WriteLayoutOptions = {},
): Promise<WrittenLayout> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0 && !(await isImageLayout(dir))) {
    throw new Error(`${dir} is neither empty nor an OCI image layout: give --out an empty or new folder`);
  }
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  let writtenBytes = 0;
  const done = new Set<string>(); // platforms share their model layers: each blob once

  const put = async (digest: string, size: number, source: { path: string } | { bytes: Buffer }) => {
    if (done.has(digest)) return;
    done.add(digest);
    const target = layoutBlobPath(dir, digest);
    if (await exists(target)) {
      options.onBlob?.({ digest, size, written: false });
      return;
    }
    const temp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      if ('path' in source) await copyFile(source.path, temp);
      else await writeFile(temp, source.bytes);
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
    writtenBytes += size;
    options.onBlob?.({ digest, size, written: true });
  };

  const images = isImageIndex(image) ? image.images : [image];
  for (const one of images) {
    for (const layer of one.layers) await put(layer.digest, layer.size, { path: layer.blobPath });
    const config = Buffer.from(one.configJson);
    await put(one.configDigest, config.length, { bytes: config });
    const manifest = Buffer.from(one.manifestJson);
    await put(one.digest, manifest.length, { bytes: manifest });
  }
  let top: OciDescriptor;
  if (isImageIndex(image)) {
    const index = Buffer.from(image.indexJson);
    await put(image.digest, index.length, { bytes: index });
    top = { mediaType: OCI_INDEX_MEDIA_TYPE, digest: image.digest, size: index.length };
  } else {
    top = { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: image.digest, size: Buffer.byteLength(image.manifestJson) };
  }
  top.annotations = { [REF_NAME_ANNOTATION]: options.tag ?? 'latest' };

  const layoutIndex: OciIndex = { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [top] };
  await writeAtomically(path.join(dir, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })}\n`);
  await writeAtomically(path.join(dir, 'index.json'), `${JSON.stringify(layoutIndex, null, 2)}\n`);
  return { digest: image.digest, writtenBytes };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/** A blob of the layout read whole, refused unless its bytes have its digest. */
export async function readLayoutBlob(dir: string, descriptor: Pick<OciDescriptor, 'digest' | 'size'>): Promise<Buffer> {
  const file = layoutBlobPath(dir, descriptor.digest);
  if (descriptor.size > MAX_DOCUMENT_BYTES) {
    throw new Error(`${file}: ${descriptor.size} bytes is too large for an image document`);
  }
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`the layout ${dir} lacks blob ${descriptor.digest} (${error.code ?? error.message})`);
  });
  if (sha256Digest(bytes) !== descriptor.digest) {
    throw new Error(`blob ${descriptor.digest} in ${dir} does not match its digest: the layout is damaged`);
  }
  return bytes;
}

/** Checks a layer blob of the layout (size and sha256) and returns its path. */
export async function verifiedLayoutBlob(dir: string, descriptor: OciDescriptor): Promise<string> {
  const file = layoutBlobPath(dir, descriptor.digest);
  const found = await sha256File(file).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`the layout ${dir} lacks blob ${descriptor.digest} (${error.code ?? error.message})`);
  });
  if (found.digest !== descriptor.digest || found.size !== descriptor.size) {
    throw new Error(`blob ${descriptor.digest} in ${dir} does not match its digest: the layout is damaged`);
  }
  return file;
}

export interface LayoutTop {
  /** Descriptor of the image index.json names: an index (multi-platform) or a manifest. */
  descriptor: OciDescriptor;
  document: OciManifest | OciIndex;
  /** Its tag in the layout, if index.json gives one. */
  tag?: string;
}

/** The one image index.json names (a layout of several images is refused, naming their tags). */
export async function readLayoutTop(dir: string): Promise<LayoutTop> {
  if (!(await isImageLayout(dir))) throw new Error(`${dir} is not an OCI image layout (it has no oci-layout file)`);
  const layout = JSON.parse(await readFile(path.join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: string };
  if (layout.imageLayoutVersion !== LAYOUT_VERSION) {
    throw new Error(`${dir}: image layout version ${layout.imageLayoutVersion} (this reads ${LAYOUT_VERSION})`);
  }
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as OciIndex;
  const manifests = index.manifests ?? [];
  if (manifests.length === 0) throw new Error(`${dir}/index.json names no image`);
  // Some tools list the platforms' manifests in index.json itself: then index.json is the image's index.
  if (manifests.length > 1 && manifests.every((m) => m.platform && m.mediaType === OCI_MANIFEST_MEDIA_TYPE)) {
    const json = await readFile(path.join(dir, 'index.json'));
    return {
      descriptor: { mediaType: OCI_INDEX_MEDIA_TYPE, digest: sha256Digest(json), size: json.length },
      document: index,
    };
  }
  if (manifests.length > 1) {
    const names = manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? m.digest);
    throw new Error(`${dir} holds ${manifests.length} images (${names.join(', ')}); Ferry reads layouts of one`);
  }
  const descriptor = manifests[0]!;
  if (!IMAGE_DOCUMENT_TYPES.has(descriptor.mediaType)) {
    throw new Error(`${dir}/index.json names a ${descriptor.mediaType}, not an image manifest or index`);
  }
  const document = JSON.parse((await readLayoutBlob(dir, descriptor)).toString('utf8')) as OciManifest | OciIndex;
  const tag = descriptor.annotations?.[REF_NAME_ANNOTATION];
  return { descriptor, document, ...(tag ? { tag } : {}) };
}
