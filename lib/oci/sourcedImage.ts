/**
 * An image read from where it is — a registry reference or an OCI image layout on disk — as the same
 * thing: what the reference names (an index or a manifest), and per platform its manifest and config.
 * Only documents are read here, never layers, so looking at a 100 MB image costs a few kilobytes.
 *
 * `unpackLayoutPlatform` unpacks one platform of a layout the way pull.ts unpacks a pulled image: every
 * blob's digest checked, every layer's diffId checked against the config.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { sha256Digest } from './digest';
import {
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  type OciDescriptor,
  type OciImageConfig,
  type OciIndex,
  type OciManifest,
} from './image';
import { readLayoutBlob, readLayoutTop, verifiedLayoutBlob } from './layout';
import { checkManifest, type PulledImage, unpackLayer } from './pull';
import { type RegistryClient, RegistryError } from './registry';

export interface PlatformImage {
  os: string;
  architecture: string;
  /** Digest and size of this platform's image manifest. */
  digest: string;
  size: number;
  manifest: OciManifest;
  config: OciImageConfig;
}

export interface SourcedImage {
  /** What the user named: a folder, or registry/repository:tag. */
  name: string;
  /** Digest of what the name resolves to (the index, for a multi-platform image). */
  digest: string;
  mediaType: string;
  /** Present for a multi-platform image. */
  index?: OciIndex;
  platforms: PlatformImage[];
}

const MAX_CONFIG_BYTES = 8 << 20;

function isIndexType(mediaType: string | undefined): boolean {
  return mediaType === OCI_INDEX_MEDIA_TYPE || mediaType === DOCKER_MANIFEST_LIST_MEDIA_TYPE;
}

interface DocumentReader {
  manifest(descriptor: OciDescriptor): Promise<OciManifest>;
  config(descriptor: OciDescriptor): Promise<OciImageConfig>;
}

async function platformsOf(
  where: string,
  top: { digest: string; size: number; document: OciManifest | OciIndex },
  reader: DocumentReader,
): Promise<PlatformImage[]> {
  const entries: Array<{ descriptor: OciDescriptor; manifest?: OciManifest }> =
    'manifests' in top.document
      ? top.document.manifests.map((descriptor) => ({ descriptor }))
      : [{ descriptor: { mediaType: '', digest: top.digest, size: top.size }, manifest: top.document }];
  const platforms: PlatformImage[] = [];
  for (const entry of entries) {
    // An index may also list non-image artifacts (attestations): those have no runnable platform.
    if (entry.descriptor.platform?.os === 'unknown') continue;
    const manifest = entry.manifest ?? (await reader.manifest(entry.descriptor));
    checkManifest(manifest, `${where}@${entry.descriptor.digest}`);
    if (manifest.config.size > MAX_CONFIG_BYTES) throw new Error(`${where}: implausibly large image config`);
    const config = await reader.config(manifest.config);
    platforms.push({
      os: config.os ?? entry.descriptor.platform?.os ?? 'linux',
      architecture: config.architecture ?? entry.descriptor.platform?.architecture ?? 'amd64',
      digest: entry.descriptor.digest,
      size: entry.descriptor.size,
      manifest,
      config,
    });
  }
  return platforms;
}

/** The image an OCI image layout holds. */
export async function openLayoutImage(dir: string): Promise<SourcedImage> {
  const top = await readLayoutTop(dir);
  const json = async (d: OciDescriptor) => JSON.parse((await readLayoutBlob(dir, d)).toString('utf8'));
  const platforms = await platformsOf(
    dir,
    { digest: top.descriptor.digest, size: top.descriptor.size, document: top.document },
    { manifest: json, config: json },
  );
  return {
    name: dir,
    digest: top.descriptor.digest,
    mediaType: top.descriptor.mediaType,
    ...('manifests' in top.document ? { index: top.document } : {}),
    platforms,
  };
}

/** The image `reference` names in a registry's `repository` (documents only; digests verified). */
export async function openRegistryImage(
  client: RegistryClient,
  repository: string,
  reference: string,
  name = `${client.baseUrl}/${repository}:${reference}`,
): Promise<SourcedImage> {
  const top = await client.getManifest(repository, reference);
  const platforms = await platformsOf(
    name,
    { digest: top.digest, size: Buffer.byteLength(top.json), document: top.document },
    {
      manifest: async (d) => {
        const fetched = await client.getManifest(repository, d.digest);
        if (!('layers' in fetched.document)) {
          throw new RegistryError(
            client.baseUrl,
            `getting manifest ${repository}@${d.digest}`,
            'not an image manifest',
          );
        }
        return fetched.document;
      },
      config: async (d) => {
        const chunks: Buffer[] = [];
        for await (const chunk of await client.getBlob(repository, d.digest)) chunks.push(chunk as Buffer);
        const bytes = Buffer.concat(chunks);
        if (sha256Digest(bytes) !== d.digest) throw new Error(`${name}: config blob ${d.digest} fails its digest`);
        return JSON.parse(bytes.toString('utf8')) as OciImageConfig;
      },
    },
  );
  return {
    name,
    digest: top.digest,
    mediaType: top.mediaType,
    ...(isIndexType(top.mediaType) ? { index: top.document as OciIndex } : {}),
    platforms,
  };
}

/** The image's linux/`architecture` platform, or an error naming the platforms it has. */
export function selectPlatform(image: SourcedImage, architecture: string): PlatformImage {
  const found = image.platforms.find((p) => p.os === 'linux' && p.architecture === architecture);
  if (found) return found;
  const has = image.platforms.map((p) => `${p.os}/${p.architecture}`).join(', ') || 'none';
  throw new Error(
    `${image.name} has no linux/${architecture} image (it has ${has}); this machine runs linux/${architecture}`,
  );
}

/** Unpacks `platform` of the layout in `dir` into `<destDir>/rootfs` (a new folder). */
export async function unpackLayoutPlatform(
  dir: string,
  image: SourcedImage,
  platform: PlatformImage,
  destDir: string,
): Promise<PulledImage> {
  const rootfs = path.join(path.resolve(destDir), 'rootfs');
  await mkdir(rootfs, { recursive: true });
  const diffIds = platform.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== platform.manifest.layers.length) {
    throw new Error(`${dir}: config lists ${diffIds.length} diff_ids for ${platform.manifest.layers.length} layers`);
  }
  for (const [i, layer] of platform.manifest.layers.entries()) {
    await unpackLayer(await verifiedLayoutBlob(dir, layer), layer, diffIds[i]!, rootfs);
  }
  return { digest: platform.digest, resolvedDigest: image.digest, config: platform.config, rootfs };
}
