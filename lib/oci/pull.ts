/**
 * Pulls an image from a registry and unpacks its layers into `<destDir>/rootfs`.
 *
 * Every blob is downloaded to disk and its sha256 checked before a byte of it is decompressed,
 * and each layer's uncompressed digest is checked against the config's diff_ids. Layers are
 * unpacked into a temporary directory that replaces rootfs only when complete, and a marker
 * (ferry-pull.json) written last records which digest rootfs holds: a crash at any point leaves
 * either the previous complete rootfs or none, never a half-unpacked one. Not safe for two
 * concurrent pulls into the same destDir.
 *
 * The unpacked tree is made read-only and sealed (lib/oci/imageTree.ts) before the swap; the marker keeps
 * the seal, and verifyPulledImageTree checks the tree against it before anything runs from it.
 *
 * removeUnusedImageTrees garbage-collects the destDirs under a parent folder that nothing uses any more.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DigestingStream, digestHex, isDigest } from './digest';
import { hostArchitecture, type OciDescriptor, type OciImageConfig, type OciManifest } from './image';
import { removeImageTree, sealImageTree, type TreeSeal, verifyImageTree } from './imageTree';
import { RegistryClient, type RegistryCredentials, resolveImageManifest } from './registry';
import { extractTar } from './tarExtract';

export interface ImageRef {
  /** e.g. http://127.0.0.1:5000 */
  registry: string;
  repository: string;
  /** a tag or a sha256 digest */
  reference: string;
}

export interface PulledImage {
  /** Digest of the image manifest that was unpacked (this platform's, for a multi-platform image). */
  digest: string;
  /** Digest the reference resolved to: the index's for a multi-platform image, else the same as digest. */
  resolvedDigest: string;
  config: OciImageConfig;
  /** Absolute path of the unpacked root filesystem. */
  rootfs: string;
}

interface PullMarker {
  /** Digest the reference resolved to (an index's, for multi-platform images). */
  resolvedDigest: string;
  digest: string;
  config: OciImageConfig;
  /** The tree as the verified layers made it (absent in trees unpacked before seals existed). */
  tree?: TreeSeal;
}

const MARKER_FILE = 'ferry-pull.json';
const MAX_CONFIG_BYTES = 8 << 20;
const GZIP_LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);
const PLAIN_LAYER_TYPES = new Set(['application/vnd.oci.image.layer.v1.tar']);

async function readMarker(destDir: string): Promise<PullMarker | null> {
  try {
    return JSON.parse(await readFile(path.join(destDir, MARKER_FILE), 'utf8')) as PullMarker;
  } catch {
    return null;
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Downloads a blob to `filePath`, refusing it (and deleting the file) unless size and sha256 match. */
export async function downloadVerifiedBlob(
  client: RegistryClient,
  repository: string,
  descriptor: OciDescriptor,
  filePath: string,
): Promise<void> {
  const body = await client.getBlob(repository, descriptor.digest);
  const digesting = new DigestingStream();
  try {
    await pipeline(body, digesting, createWriteStream(filePath));
    if (digesting.digest() !== descriptor.digest || digesting.size !== descriptor.size) {
      throw new Error(
        `blob ${descriptor.digest} from ${client.baseUrl}/${repository} failed verification: ` +
          `got ${digesting.size} bytes with digest ${digesting.digest()}, expected ${descriptor.size} bytes`,
      );
    }
  } catch (error) {
    await rm(filePath, { force: true });
    throw error;
  }
}

export function checkManifest(manifest: OciManifest, where: string): void {
  if (manifest.schemaVersion !== 2 || !manifest.config || !Array.isArray(manifest.layers)) {
    throw new Error(`${where} is not a schema 2 image manifest`);
  }
  for (const layer of [manifest.config, ...manifest.layers]) {
    if (!isDigest(layer.digest) || !Number.isSafeInteger(layer.size) || layer.size < 0) {
      throw new Error(`${where} has an invalid descriptor: ${JSON.stringify(layer)}`);
    }
  }
  for (const layer of manifest.layers) {
    if (!GZIP_LAYER_TYPES.has(layer.mediaType) && !PLAIN_LAYER_TYPES.has(layer.mediaType)) {
      throw new Error(`${where} has a layer of unsupported media type ${layer.mediaType}`);
    }
  }
}

/** Unpacks one layer blob into `rootfs`, refusing it unless it unpacks to `expectedDiffId`. */
export async function unpackLayer(
  blobPath: string,
  layer: OciDescriptor,
  expectedDiffId: string,
  rootfs: string,
): Promise<void> {
  const diff = new DigestingStream();
  const decompress = GZIP_LAYER_TYPES.has(layer.mediaType) ? [createGunzip()] : [];
  const feeding = pipeline([createReadStream(blobPath), ...decompress, diff]);
  try {
    await extractTar(diff, rootfs, { whiteouts: true });
  } catch (error) {
    diff.destroy();
    await feeding.catch(() => undefined);
    throw error;
  }
  await feeding;
  if (diff.digest() !== expectedDiffId) {
    throw new Error(
      `layer ${layer.digest} unpacks to ${diff.digest()}, but the image config expects ${expectedDiffId}`,
    );
  }
}

export interface PullOptions {
  /** The platform to take from a multi-platform image (linux/<architecture>); default this machine's. */
  architecture?: string;
  /** For a registry that asks for them; default the configured registry's (registry.ts). */
  credentials?: RegistryCredentials | null;
}

export async function pullImage(ref: ImageRef, destDir: string, options: PullOptions = {}): Promise<PulledImage> {
  const dest = path.resolve(destDir);
  const rootfs = path.join(dest, 'rootfs');
  await mkdir(dest, { recursive: true });
  const marker = await readMarker(dest);
  const done = (m: PullMarker, resolvedDigest = m.resolvedDigest): PulledImage => ({
    digest: m.digest,
    resolvedDigest: resolvedDigest ?? m.digest,
    config: m.config,
    rootfs,
  });
  const architecture = options.architecture ?? hostArchitecture();

  // Pinned by digest and already unpacked for this platform: no network at all.
  if (
    marker?.tree &&
    (await exists(rootfs)) &&
    isDigest(ref.reference) &&
    (ref.reference === marker.resolvedDigest || ref.reference === marker.digest) &&
    (marker.config.architecture ?? 'amd64') === architecture
  ) {
    return done(marker, isDigest(ref.reference) ? ref.reference : marker.resolvedDigest);
  }
  const client = new RegistryClient(ref.registry, { credentials: options.credentials });
  const { resolvedDigest, digest, manifest } = await resolveImageManifest(
    client,
    ref.repository,
    ref.reference,
    architecture,
  );
  if (marker?.tree && marker.digest === digest && (await exists(rootfs))) return done(marker, resolvedDigest);

  const where = `${client.baseUrl}/${ref.repository}@${digest}`;
  checkManifest(manifest, where);
  const token = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const workDir = path.join(dest, `.pull-${token}`);
  const newRootfs = path.join(workDir, 'rootfs');
  await mkdir(newRootfs, { recursive: true });
  try {
    if (manifest.config.size > MAX_CONFIG_BYTES)
      throw new Error(`${where}: image config is implausibly large (${manifest.config.size} bytes)`);
    const configPath = path.join(workDir, 'config.json');
    await downloadVerifiedBlob(client, ref.repository, manifest.config, configPath);
    const config = JSON.parse(await readFile(configPath, 'utf8')) as OciImageConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw new Error(`${where}: config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`);
    }

    for (const [i, layer] of manifest.layers.entries()) {
      const blobPath = path.join(workDir, `layer-${digestHex(layer.digest)}`);
      await downloadVerifiedBlob(client, ref.repository, layer, blobPath);
      await unpackLayer(blobPath, layer, diffIds[i]!, newRootfs);
      await rm(blobPath, { force: true });
    }
    const tree = await sealImageTree(newRootfs);

    // Swap in the complete rootfs. The marker goes first so it never vouches for a stale tree.
    await unlink(path.join(dest, MARKER_FILE)).catch(() => undefined);
    if (await exists(rootfs)) await rename(rootfs, path.join(workDir, 'old-rootfs'));
    await rename(newRootfs, rootfs);
    const next: PullMarker = { resolvedDigest, digest, config, tree };
    const markerTemp = path.join(workDir, MARKER_FILE);
    await writeFile(markerTemp, JSON.stringify(next, null, 2));
    await rename(markerTemp, path.join(dest, MARKER_FILE));
    return done(next);
  } finally {
    await removeImageTree(workDir);
  }
}

/**
 * Checks the tree pullImage unpacked at `rootfs` against its seal (ImageTreeModifiedError when it differs).
 * A tree unpacked before seals existed is sealed as it is now, once.
 */
export async function verifyPulledImageTree(rootfs: string): Promise<void> {
  const dest = path.dirname(rootfs);
  const marker = await readMarker(dest);
  if (!marker) throw new Error(`${rootfs} is not an image tree pulled by Ferry (no ${MARKER_FILE} beside it)`);
  if (marker.tree) return verifyImageTree(rootfs, marker.tree);
  const sealed: PullMarker = { ...marker, tree: await sealImageTree(rootfs) };
  const temp = path.join(dest, `.${MARKER_FILE}.${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(temp, JSON.stringify(sealed, null, 2));
  await rename(temp, path.join(dest, MARKER_FILE));
}

/**
 * Removes every folder directly under `imagesDir` (each a pullImage destDir) that is not in `inUse`
 * (destDirs, or paths inside them such as their rootfs): the caller names everything a live revision,
 * a running replica or a pull in progress uses. Resolves to the folders removed.
 */
export async function removeUnusedImageTrees(imagesDir: string, inUse: Iterable<string>): Promise<string[]> {
  const root = path.resolve(imagesDir);
  const kept = new Set<string>();
  for (const p of inUse) {
    const rel = path.relative(root, path.resolve(p));
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) kept.add(rel.split(path.sep)[0]!);
  }
  let entries: Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || kept.has(e.name)) continue;
    const dir = path.join(root, e.name);
    await removeImageTree(dir);
    removed.push(dir);
  }
  return removed;
}
