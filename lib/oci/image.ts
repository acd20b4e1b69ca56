/**
 * OCI image config and manifest documents.
 *
 * Both are serialized as canonical JSON (keys sorted, no whitespace) and carry no timestamps, so
 * the manifest digest is a pure function of the layers and the settings: rebuild → same digest.
 */
import { sha256Digest } from './digest';
import type { LayerBlob } from './layer';

export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.list.v2+json';

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface OciImageConfig {
  architecture: string;
  os: string;
  config: {
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
    ExposedPorts?: Record<string, Record<string, never>>;
    User?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  created?: string;
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: OciDescriptor[];
  annotations?: Record<string, string>;
}

/** A serialized document and its descriptor: what gets pushed and what refers to it. */
export interface SerializedDocument<T> {
  document: T;
  json: string;
  descriptor: OciDescriptor;
}

/** JSON with object keys sorted at every level, so equal values always serialize identically. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
    }
    return v;
  });
}

function serialize<T>(document: T, mediaType: string): SerializedDocument<T> {
  const json = canonicalJson(document);
  return { document, json, descriptor: { mediaType, digest: sha256Digest(json), size: Buffer.byteLength(json) } };
}

export interface ImageSettings {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  labels?: Record<string, string>;
  /** e.g. ["8000/tcp"] */
  exposedPorts?: string[];
  /** "uid:gid" (or a user name the image's /etc/passwd knows) the process runs as. */
  user?: string;
  architecture?: string;
  os?: string;
}

/** The OCI architecture name of the machine this runs on (Go's GOARCH names). */
export function hostArchitecture(): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  const name = names[process.arch];
  if (!name) throw new Error(`no OCI architecture name for ${process.arch}`);
  return name;
}

/** The image config for `layers` (in order, bottom first). */
export function createImageConfig(
  layers: readonly LayerBlob[],
  settings: ImageSettings = {},
): SerializedDocument<OciImageConfig> {
  const config: OciImageConfig['config'] = {};
  if (settings.entrypoint) config.Entrypoint = [...settings.entrypoint];
  if (settings.cmd) config.Cmd = [...settings.cmd];
  if (settings.env) config.Env = [...settings.env];
  if (settings.workingDir) config.WorkingDir = settings.workingDir;
  if (settings.user) config.User = settings.user;
  if (settings.labels && Object.keys(settings.labels).length > 0) config.Labels = { ...settings.labels };
  if (settings.exposedPorts?.length) {
    config.ExposedPorts = Object.fromEntries(settings.exposedPorts.map((p) => [p, {}]));
  }
  const document: OciImageConfig = {
    architecture: settings.architecture ?? 'amd64',
    os: settings.os ?? 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  return serialize(document, OCI_CONFIG_MEDIA_TYPE);
}

/** The image manifest tying a config to its layers. */
export function createImageManifest(
  config: SerializedDocument<OciImageConfig>,
  layers: readonly LayerBlob[],
  annotations?: Record<string, string>,
): SerializedDocument<OciManifest> {
  const document: OciManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: config.descriptor,
    layers: layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      ...(l.annotations && Object.keys(l.annotations).length > 0 ? { annotations: { ...l.annotations } } : {}),
    })),
  };
  if (annotations && Object.keys(annotations).length > 0) document.annotations = { ...annotations };
  return serialize(document, OCI_MANIFEST_MEDIA_TYPE);
}

/**
 * A built image ready to push: documents as the exact JSON that gets pushed, layers on disk.
 * Plain JSON (no Buffers), so it can travel between activities.
 */
export interface BuiltImage {
  /** Digest of the manifest: the image's identity once pushed. */
  digest: string;
  manifestJson: string;
  configJson: string;
  configDigest: string;
  config: OciImageConfig;
  layers: LayerBlob[];
  /** Config plus compressed layers, in bytes (what a registry stores). */
  sizeBytes: number;
}

export function assembleImage(
  layers: readonly LayerBlob[],
  settings: ImageSettings,
  annotations?: Record<string, string>,
): BuiltImage {
  const config = createImageConfig(layers, settings);
  const manifest = createImageManifest(config, layers, annotations);
  return {
    digest: manifest.descriptor.digest,
    manifestJson: manifest.json,
    configJson: config.json,
    configDigest: config.descriptor.digest,
    config: config.document,
    layers: [...layers],
    sizeBytes: config.descriptor.size + layers.reduce((sum, l) => sum + l.size, 0),
  };
}

/** A multi-platform image: an index over one image per platform, which may share layers. */
export interface BuiltImageIndex {
  /** Digest of the index: the image's identity once pushed. */
  digest: string;
  indexJson: string;
  images: BuiltImage[];
  /** Every distinct config and compressed layer, in bytes (as BuiltImage.sizeBytes counts them). */
  sizeBytes: number;
}

export function isImageIndex(image: BuiltImage | BuiltImageIndex): image is BuiltImageIndex {
  return 'indexJson' in image;
}

/** The OCI image index over `images`, in the given order (one per architecture/os). */
export function assembleIndex(images: readonly BuiltImage[], annotations?: Record<string, string>): BuiltImageIndex {
  const seen = new Set<string>();
  for (const image of images) {
    const platform = `${image.config.os}/${image.config.architecture}`;
    if (seen.has(platform)) throw new Error(`an image index lists ${platform} twice`);
    seen.add(platform);
  }
  const document: OciIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: images.map((image) => ({
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: image.digest,
      size: Buffer.byteLength(image.manifestJson),
      platform: { architecture: image.config.architecture, os: image.config.os },
    })),
  };
  if (annotations && Object.keys(annotations).length > 0) document.annotations = { ...annotations };
  const index = serialize(document, OCI_INDEX_MEDIA_TYPE);
  const blobs = new Map<string, number>();
  for (const image of images) {
    blobs.set(image.configDigest, Buffer.byteLength(image.configJson));
    for (const layer of image.layers) blobs.set(layer.digest, layer.size);
  }
  return {
    digest: index.descriptor.digest,
    indexJson: index.json,
    images: [...images],
    sizeBytes: [...blobs.values()].reduce((sum, n) => sum + n, 0),
  };
}
