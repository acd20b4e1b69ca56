/**
 * Pushes a built image or image index: blobs first, then the manifests, the tag last.
 *
 * Each blob is HEADed first and skipped if the repository has it; one the registry holds in another
 * repository (blobLocations.ts remembers where Ferry pushed it) is mounted from there, so a new
 * repository costs no upload of the shared runtime layers. Blobs go bottom layer first, so an
 * interrupted push leaves the shared runtime layer in place for the retry. For an index, each
 * platform's manifest is put by digest before the index is put under the tag: the registry refuses an
 * index whose manifests it does not have. A push that fails (a registry that refuses, or disappears
 * after the retries) throws before the tag is written, so no tag ever names a half-pushed image.
 */
import { type BlobLocations, defaultBlobLocations } from './blobLocations';
import {
  type BuiltImage,
  type BuiltImageIndex,
  isImageIndex,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from './image';
import { type BlobProgress, RegistryClient, type RegistryClientOptions } from './registry';

export interface PushedImage {
  /** Digest of what the tag names: the index for a multi-platform image. */
  digest: string;
  /** Configs and distinct layers, in bytes: pushed + skipped + mounted. */
  sizeBytes: number;
  /** Bytes uploaded in this push. */
  pushedBytes: number;
  /** Bytes of blobs the repository already had. */
  skippedBytes: number;
  /** Bytes of blobs mounted from another repository of the same registry (not sent). */
  mountedBytes: number;
  /** Per platform of an index: its architecture and manifest digest. */
  platforms?: Array<{ architecture: string; digest: string }>;
}

export interface PushOptions extends RegistryClientOptions {
  /** Where to look up (and record) which repositories hold a blob; null: no mounts. Default: the cache's. */
  blobLocations?: BlobLocations | null;
  /** Called as each blob is checked, mounted or uploaded, chunk by chunk. */
  onProgress?: (progress: BlobProgress) => void;
}

export async function pushImage(
  image: BuiltImage | BuiltImageIndex,
  registryUrl: string,
  repository: string,
  tag: string,
  options: PushOptions = {},
): Promise<PushedImage> {
  const { blobLocations: _locations, onProgress, ...clientOptions } = options;
  const client = new RegistryClient(registryUrl, clientOptions);
  const locations = options.blobLocations === undefined ? defaultBlobLocations() : options.blobLocations;
  const images = isImageIndex(image) ? image.images : [image];
  const result = { pushedBytes: 0, skippedBytes: 0, mountedBytes: 0 };
  const done = new Set<string>();

  for (const one of images) {
    const configBytes = Buffer.from(one.configJson);
    const blobs = [
      ...one.layers.map((l) => ({ digest: l.digest, size: l.size, path: l.blobPath })),
      { digest: one.configDigest, size: configBytes.length, bytes: configBytes },
    ];
    for (const blob of blobs) {
      if (done.has(blob.digest)) continue; // a layer two platforms share
      done.add(blob.digest);
      const [mountFrom] = locations ? await locations.repositoriesWith(client.baseUrl, blob.digest, repository) : [];
      const pushed = await client.pushBlob(repository, blob, { mountFrom, onProgress });
      if (pushed.pushed) result.pushedBytes += blob.size;
      else if (pushed.mountedFrom) result.mountedBytes += blob.size;
      else result.skippedBytes += blob.size;
    }
    if (isImageIndex(image)) {
      const digest = await client.putManifest(repository, one.digest, one.manifestJson, OCI_MANIFEST_MEDIA_TYPE);
      if (digest !== one.digest)
        throw new Error(`pushed manifest digest ${digest} differs from the built ${one.digest}`);
    }
  }
  const [json, mediaType] = isImageIndex(image)
    ? [image.indexJson, OCI_INDEX_MEDIA_TYPE]
    : [image.manifestJson, OCI_MANIFEST_MEDIA_TYPE];
  const digest = await client.putManifest(repository, tag, json, mediaType);
  if (digest !== image.digest)
    throw new Error(`pushed digest ${digest} differs from the built image's ${image.digest}`);
  if (locations) {
    await locations.remember(client.baseUrl, repository, done);
    await locations.save();
  }
  return {
    digest,
    sizeBytes: image.sizeBytes,
    ...result,
    ...(isImageIndex(image)
      ? { platforms: image.images.map((i) => ({ architecture: i.config.architecture, digest: i.digest })) }
      : {}),
  };
}
