/**
 * `ferry image build` and `ferry image inspect`: model images without the pipeline.
 *
 *   build    models → layers (lib/image/modelImage.ts) → an OCI image layout (--out) or a registry (--push)
 *   inspect  a layout or a registry reference → layers, sizes, platforms, models (--json for scripts)
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FerryConfig } from '../../lib/config';
import { chooseEdgePlan } from '../../lib/image/edgePlan';
import { describeImage, type ImageDescription } from '../../lib/image/imageInspect';
import { IMAGE_KINDS, type ImageKind, imageKind } from '../../lib/image/imageKinds';
import {
  type BuiltImageIndex,
  buildModelImageIndex,
  IMAGE_ARCHITECTURES,
  type ImageModel,
  LAYER_MODEL_NAME_ANNOTATION,
  LAYER_MODEL_VERSION_ANNOTATION,
  LAYER_ROLE_ANNOTATION,
  pushImage,
} from '../../lib/image/modelImage';
import { sha256Digest } from '../../lib/oci/digest';
import { writeImageLayout } from '../../lib/oci/layout';
import { RegistryClient } from '../../lib/oci/registry';
import { openLayoutImage, openRegistryImage, type SourcedImage } from '../../lib/oci/sourcedImage';
import { ModelValidationError, validateModel } from '../../lib/onnx/validate';
import type { OptimizationTable } from '../../lib/optimize/types';
import { FerryError } from '../sdk/errors';
import { type CredentialFlags, parsePlatforms, registryCredentials } from './imageFlags';
import { BlobProgressPrinter } from './imageProgress';
import { formatImageRef, type ParsedImageRef, parseImageRef } from './imageRef';
import { formatBytes } from './progress';

export interface ImageBuildFlags extends CredentialFlags {
  platform?: string;
  out?: string;
  push?: string;
  /** The tag an --out layout gives the image (default latest). */
  tag?: string;
  /** Bytes per upload chunk of --push. */
  chunkBytes?: number;
  /** inference (default), batch or edge (lib/image/imageKinds.ts). */
  kind?: string;
  /** A `ferry optimize --out DIR` report.json: the image serves the plan it picks (edge: int8 within budget). */
  optimization?: string;
}

/** The model's name in the image: the file name without .onnx, lowercased and made path-safe. */
function modelNameOf(file: string): string {
  return path
    .basename(file)
    .replace(/\.onnx$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[-.]+/, '');
}

/** Each file read and checked as an ONNX model; its version is sha- and the file's sha256 prefix. */
async function readModels(files: readonly string[], maxBytes: number): Promise<ImageModel[]> {
  const models: ImageModel[] = [];
  for (const file of files) {
    const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      const why = error.code === 'ENOENT' ? 'no such file' : error.code === 'EISDIR' ? 'a folder' : error.code;
      throw new FerryError(`cannot read model ${file}: ${why ?? error.message}`);
    });
    try {
      validateModel(bytes, { maxBytes });
    } catch (error) {
      if (error instanceof ModelValidationError)
        throw new FerryError(`${file} is not a usable ONNX model: ${error.message}`);
      throw error;
    }
    const name = modelNameOf(file);
    if (!name) throw new FerryError(`${file}: its file name gives no model name`);
    models.push({
      name,
      version: `sha-${sha256Digest(bytes).slice('sha256:'.length, 'sha256:'.length + 12)}`,
      onnxPath: file,
    });
  }
  return models;
}

function parseKind(raw: string | undefined): ImageKind {
  const kind = raw ?? 'inference';
  if (!(IMAGE_KINDS as readonly string[]).includes(kind)) {
    throw new FerryError(`unknown image kind "${kind}": give ${IMAGE_KINDS.join(', ')}`);
  }
  return kind as ImageKind;
}

/**
 * The model of a `ferry optimize` report, as the plan the kind picks: for an edge image the int8 plan
 * when one is within the accuracy budget (edgePlan.ts), else the report's best; served with the plan's
 * session options and batching. The report must be about the model file given.
 */
async function readOptimizedModel(
  files: readonly string[],
  reportPath: string,
  kind: ImageKind,
  maxBytes: number,
): Promise<ImageModel[]> {
  if (files.length !== 1) throw new FerryError('--optimization goes with one model file, the one it was made from');
  const report = JSON.parse(
    await readFile(reportPath, 'utf8').catch(() => {
      throw new FerryError(`--optimization ${reportPath} cannot be read (a ferry optimize --out DIR report.json)`);
    }),
  ) as { model?: string; files?: Record<string, string>; table?: OptimizationTable };
  if (!report.table?.candidates || !report.files) {
    throw new FerryError(`--optimization ${reportPath} is not a ferry optimize report (no table, no files)`);
  }
  const [original] = await readModels(files, maxBytes);
  const [reported] = report.model ? await readModels([report.model], maxBytes).catch(() => [undefined]) : [undefined];
  if (!reported || reported.version !== original!.version) {
    throw new FerryError(
      `--optimization ${reportPath} was made from ${report.model ?? 'another model'}, not ${files[0]}`,
    );
  }
  const choice =
    kind === 'edge'
      ? chooseEdgePlan(report.table)
      : { candidate: report.table.candidates.find((c) => c.id === report.table!.best)!, reason: "the report's best" };
  const { candidate } = choice;
  console.log(`Plan ${choice.reason}`);
  if (candidate.id === 'original') return [original!];
  const file = report.files[candidate.id];
  if (!file) throw new FerryError(`--optimization ${reportPath} lists no model file for plan ${candidate.id}`);
  const resolved = path.resolve(path.dirname(reportPath), file);
  const [optimized] = await readModels([resolved], maxBytes);
  return [
    {
      ...optimized!,
      name: original!.name,
      ...(candidate.sessionOptions ? { sessionOptions: { ...candidate.sessionOptions } } : {}),
      ...(candidate.batching ? { batching: candidate.batching } : {}),
    },
  ];
}

/** digest → what the blob is, for the progress lines. */
function blobLabels(image: BuiltImageIndex): Map<string, string> {
  const labels = new Map<string, string>([[image.digest, 'index']]);
  for (const one of image.images) {
    const platform = `${one.config.os}/${one.config.architecture}`;
    labels.set(one.digest, `manifest ${platform}`);
    labels.set(one.configDigest, `config ${platform}`);
    for (const layer of one.layers) {
      const a = layer.annotations ?? {};
      const role = a[LAYER_ROLE_ANNOTATION] ?? 'layer';
      const label =
        role === 'model'
          ? `model ${a[LAYER_MODEL_NAME_ANNOTATION]}:${a[LAYER_MODEL_VERSION_ANNOTATION]}`
          : role === 'runtime'
            ? `runtime ${platform}`
            : role;
      labels.set(layer.digest, label);
    }
  }
  return labels;
}

export async function imageBuildCommand(config: FerryConfig, files: string[], flags: ImageBuildFlags): Promise<void> {
  if (!flags.out && !flags.push)
    throw new FerryError('say where the image goes: --out DIR or --push REGISTRY/REPO:TAG');
  const kind = parseKind(flags.kind);
  // No --platform: the kind's own default (an edge image is arm64 alone).
  const architectures =
    flags.platform === undefined
      ? [...(imageKind(kind).defaultArchitectures ?? IMAGE_ARCHITECTURES)]
      : parsePlatforms(flags.platform);
  let target: ParsedImageRef | undefined;
  if (flags.push) {
    target = parseImageRef(flags.push, config.registry.url);
    if (target.reference.startsWith('sha256:')) throw new FerryError(`--push needs a tag, not a digest: ${flags.push}`);
  }
  const credentials = target ? registryCredentials(flags) : undefined;
  const models = flags.optimization
    ? await readOptimizedModel(files, flags.optimization, kind, config.access.maxModelBytes)
    : await readModels(files, config.access.maxModelBytes);
  // A registry that is down or refuses us is found out before the build, not after it.
  if (target) await new RegistryClient(target.registry, { credentials }).ping();

  const platforms = architectures.map((a) => `linux/${a}`).join(', ');
  console.log(
    `Building the ${kind} image of ${models.map((m) => `${m.name}:${m.version}`).join(', ')} for ${platforms}...`,
  );
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'ferry-image-'));
  try {
    const started = performance.now();
    const image = await buildModelImageIndex({ models, architectures, blobDir: scratch, kind });
    const labels = blobLabels(image);
    const seen = new Set<string>();
    for (const one of image.images) {
      for (const layer of one.layers) {
        if (seen.has(layer.digest)) continue;
        seen.add(layer.digest);
        console.log(
          `  layer    ${labels.get(layer.digest)!.padEnd(32)} ${formatBytes(layer.size).padStart(10)}  ${layer.digest.slice(0, 19)}`,
        );
      }
    }
    console.log(
      `Built ${image.digest} (${image.images.length} platform${image.images.length > 1 ? 's' : ''}, ${formatBytes(image.sizeBytes)}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    const printer = new BlobProgressPrinter(labels);
    if (flags.out) {
      const out = path.resolve(flags.out);
      const written = await writeImageLayout(image, out, {
        tag: flags.tag,
        onBlob: (b) => printer.written(b),
      });
      printer.done();
      console.log(`Wrote the OCI image layout ${out} (${formatBytes(written.writtenBytes)} new): ${written.digest}`);
    }
    if (target) {
      const pushed = await pushImage(image, target.registry, target.repository, target.reference, {
        credentials,
        ...(flags.chunkBytes ? { chunkBytes: flags.chunkBytes } : {}),
        onProgress: (p) => printer.push(p),
      });
      printer.done();
      console.log(
        `Pushed ${formatImageRef(target)}@${pushed.digest}: ${formatBytes(pushed.pushedBytes)} sent, ` +
          `${formatBytes(pushed.skippedBytes)} already there, ${formatBytes(pushed.mountedBytes)} mounted`,
      );
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export interface OpenedImage {
  image: SourcedImage;
  /** Set when the image is an OCI image layout in this folder. */
  layoutDir?: string;
  /** Set when the image is in a registry. */
  ref?: ParsedImageRef;
}

/** A folder is read as an OCI image layout; anything else as a registry reference. */
export async function openImage(config: FerryConfig, target: string, flags: CredentialFlags): Promise<OpenedImage> {
  const info = await stat(target).catch(() => undefined);
  if (info?.isDirectory()) {
    const layoutDir = path.resolve(target);
    return { image: await openLayoutImage(layoutDir), layoutDir };
  }
  if (info) throw new FerryError(`${target} is a file: give an OCI image layout folder or REGISTRY/REPO:TAG`);
  if (/^(\.{1,2}\/|\/)/.test(target)) throw new FerryError(`no such folder: ${target}`);
  const ref = parseImageRef(target, config.registry.url);
  const client = new RegistryClient(ref.registry, { credentials: registryCredentials(flags) });
  return { image: await openRegistryImage(client, ref.repository, ref.reference, formatImageRef(ref)), ref };
}

export function formatImageDescription(d: ImageDescription): string {
  const lines: string[] = [];
  const kind = d.platforms.length > 1 || d.mediaType.includes('index') ? 'image index' : 'image';
  lines.push(`${d.name}`);
  lines.push(`  ${kind} ${d.digest}, ${formatBytes(d.sizeBytes)} in all`);
  if (d.models.length) {
    lines.push(
      `  models: ${d.models.map((m) => (m.version ? `${m.name} (version ${m.version})` : m.name)).join(', ')}`,
    );
  }
  for (const p of d.platforms) {
    lines.push('');
    lines.push(`  ${p.platform}  manifest ${p.digest}  ${formatBytes(p.sizeBytes)}`);
    if (p.entrypoint.length) lines.push(`    runs ${p.entrypoint.join(' ')}${p.user ? ` as ${p.user}` : ''}`);
    for (const l of p.layers) {
      const holds = l.model ? `model ${l.model.name}:${l.model.version}` : l.role;
      lines.push(
        `    ${holds.padEnd(34)} ${formatBytes(l.size).padStart(10)}  ${l.digest.slice(0, 19)}  ${l.mediaType}`,
      );
    }
    lines.push(
      `    ${'config'.padEnd(34)} ${formatBytes(p.config.size).padStart(10)}  ${p.config.digest.slice(0, 19)}`,
    );
  }
  return lines.join('\n');
}

export async function imageInspectCommand(
  config: FerryConfig,
  target: string,
  flags: CredentialFlags & { json?: boolean },
): Promise<void> {
  const description = describeImage((await openImage(config, target, flags)).image);
  console.log(flags.json ? JSON.stringify(description, null, 2) : formatImageDescription(description));
}
