/**
 * What an image holds, from its documents alone (lib/oci/sourcedImage.ts): per platform its layers —
 * media type, size, and what each holds, from the descriptor annotations modelImage.ts writes — its
 * config, and the models the image serves. An image Ferry did not build shows its layers as "layer".
 */
import type { SourcedImage } from '../oci/sourcedImage';
import {
  LAYER_MODEL_NAME_ANNOTATION,
  LAYER_MODEL_VERSION_ANNOTATION,
  LAYER_ROLE_ANNOTATION,
  type LayerRole,
  MODELS_LABEL,
} from './modelImage';

export interface LayerDescription {
  mediaType: string;
  digest: string;
  /** Compressed bytes (what a registry stores and a pull downloads). */
  size: number;
  role: LayerRole | 'layer';
  /** For a model layer. */
  model?: { name: string; version: string };
}

export interface PlatformDescription {
  platform: string;
  digest: string;
  config: { digest: string; size: number };
  layers: LayerDescription[];
  /** Config plus layers. */
  sizeBytes: number;
  entrypoint: string[];
  user?: string;
}

export interface ImageDescription {
  name: string;
  digest: string;
  mediaType: string;
  platforms: PlatformDescription[];
  models: Array<{ name: string; version: string }>;
  /** Every distinct blob of the image once (platforms share their model layers). */
  sizeBytes: number;
}

const ROLES = new Set<string>(['runtime', 'server', 'model', 'configuration']);

/** `a:1,b:sha-12` → [{a, 1}, {b, sha-12}]. */
export function parseModelsLabel(label: string | undefined): Array<{ name: string; version: string }> {
  if (!label) return [];
  return label
    .split(',')
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.indexOf(':');
      return colon < 0
        ? { name: entry, version: '' }
        : { name: entry.slice(0, colon), version: entry.slice(colon + 1) };
    });
}

export function describeImage(image: SourcedImage): ImageDescription {
  const blobs = new Map<string, number>();
  const platforms = image.platforms.map((p): PlatformDescription => {
    blobs.set(p.manifest.config.digest, p.manifest.config.size);
    const layers = p.manifest.layers.map((layer): LayerDescription => {
      blobs.set(layer.digest, layer.size);
      const annotations = layer.annotations ?? {};
      const role = annotations[LAYER_ROLE_ANNOTATION];
      const name = annotations[LAYER_MODEL_NAME_ANNOTATION];
      return {
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.size,
        role: role && ROLES.has(role) ? (role as LayerRole) : 'layer',
        ...(name ? { model: { name, version: annotations[LAYER_MODEL_VERSION_ANNOTATION] ?? '' } } : {}),
      };
    });
    return {
      platform: `${p.os}/${p.architecture}`,
      digest: p.digest,
      config: { digest: p.manifest.config.digest, size: p.manifest.config.size },
      layers,
      sizeBytes: p.manifest.config.size + layers.reduce((sum, l) => sum + l.size, 0),
      entrypoint: [...(p.config.config?.Entrypoint ?? []), ...(p.config.config?.Cmd ?? [])],
      ...(p.config.config?.User ? { user: p.config.config.User } : {}),
    };
  });
  const fromLabel = parseModelsLabel(image.platforms[0]?.config.config?.Labels?.[MODELS_LABEL]);
  const fromLayers = platforms[0]?.layers.flatMap((l) => (l.model ? [l.model] : [])) ?? [];
  return {
    name: image.name,
    digest: image.digest,
    mediaType: image.mediaType,
    platforms,
    models: fromLabel.length > 0 ? fromLabel : fromLayers,
    sizeBytes: [...blobs.values()].reduce((sum, n) => sum + n, 0),
  };
}
