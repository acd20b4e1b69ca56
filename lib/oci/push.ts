/**
 * Pushes a built image: config and layer blobs first (skipping any the repository already has),
 * then the manifest under its tag. Blobs are pushed bottom layer first, so an interrupted push
 * leaves the shared runtime layer in place for the retry.
 */
import { type BuiltImage, OCI_MANIFEST_MEDIA_TYPE } from './image';
import { RegistryClient } from './registry';

export interface PushedImage {
  digest: string;
  /** Config plus compressed layers, in bytes. */
  sizeBytes: number;
  /** Bytes uploaded in this push. */
  pushedBytes: number;
  /** Bytes of blobs the repository already had. */
  skippedBytes: number;
}

export async function pushImage(
  image: BuiltImage,
  registryUrl: string,
  repository: string,
  tag: string,
): Promise<PushedImage> {
  const client = new RegistryClient(registryUrl);
  let pushedBytes = 0;
  let skippedBytes = 0;
  const configBytes = Buffer.from(image.configJson);
  const blobs = [
    ...image.layers.map((l) => ({ digest: l.digest, size: l.size, path: l.blobPath })),
    { digest: image.configDigest, size: configBytes.length, bytes: configBytes },
  ];
  for (const blob of blobs) {
    const result = await client.pushBlob(repository, blob);
    if (result.pushed) pushedBytes += blob.size;
    else skippedBytes += blob.size;
  }
  const digest = await client.putManifest(repository, tag, image.manifestJson, OCI_MANIFEST_MEDIA_TYPE);
  if (digest !== image.digest)
    throw new Error(`pushed manifest digest ${digest} differs from the built image's ${image.digest}`);
  return { digest, sizeBytes: image.sizeBytes, pushedBytes, skippedBytes };
}
