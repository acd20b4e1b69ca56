/**
 * The two layers every Ferry image starts with, assembled from files, without a base image.
 *
 * Runtime layer (one per architecture, the same for every model and every Ferry commit):
 *   /usr/bin/node                                   Node.js (platforms.ts says from where), stripped
 *   /lib/<triplet>/<soname>                         exactly the shared libraries node and onnxruntime load
 *   /lib64/ld-linux-x86-64.so.2 or /lib/ld-linux-aarch64.so.1 → the loader in /lib/<triplet>
 *   /app/node_modules/onnxruntime-node/{package.json,dist/*.js,bin/napi-v6/linux/<arch>/*}
 *   /app/node_modules/onnxruntime-common/{package.json,dist/cjs/*.js}
 *   /etc/{passwd,group,nsswitch.conf,ssl/certs/ca-certificates.crt}, /tmp (1777), /home/ferry
 *
 * Server layer (the same for every architecture; changes with runtime/server):
 *   /app/server.js                                  esbuild bundle of runtime/server/main.ts
 *   (or the program of another image kind, imageKinds.ts: /app/batch.js for a batch image, and for an
 *   edge image the server bundled without OpenTelemetry)
 *
 * Building the runtime layer means stripping a 99 MB binary and gzipping ~130 MB, so its blob is cached
 * under `<cacheDir>/layers/`, keyed by a hash of exactly what goes into it (file contents, modes, the
 * strip tool's version, the layout's format number).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { loadConfig } from '../config';
import { sha256Digest, sha256File } from '../oci/digest';
import { canonicalJson } from '../oci/image';
import { blobPathFor, type LayerBlob, writeLayer } from '../oci/layer';
import type { TarEntry } from '../oci/tar';
import { type ImageKind, imageKind } from './imageKinds';
import {
  ensurePlatformInputs,
  type ImageArchitecture,
  type ImagePlatform,
  imagePlatform,
  inSysroot,
} from './platforms';
import { type ResolvedClosure, resolveSharedLibraries } from './sharedLibraries';
import { CA_BUNDLE_PATH, systemEntries } from './systemFiles';

const run = promisify(execFile);

/** Bump when the layout or build settings change, so old cache entries stop matching. */
const RUNTIME_LAYER_FORMAT = 2;
export const NODE_IN_IMAGE = '/usr/bin/node';
export const SERVER_IN_IMAGE = '/app/server.js';

export interface RuntimeLayerOptions {
  /** Server entry point; default `<repo>/runtime/server/main.ts`. */
  entry?: string;
  /** Where onnxruntime-node is installed; default `<repo>/node_modules`. */
  nodeModulesDir?: string;
  /** Cache root; default the config's cacheDir (layers go in `<cacheDir>/layers`). */
  cacheDir?: string;
  /** Default amd64. */
  architecture?: ImageArchitecture;
  /** Whether /etc/ssl/certs/ca-certificates.crt goes in (default true; an edge image leaves it out). */
  caCertificates?: boolean;
}

export interface BundleOptions {
  /**
   * False: runtime/server/telemetry.ts is replaced by noTelemetry.ts, so no OpenTelemetry code is in
   * the bundle (checked: the bundle fails if any still is). Default true.
   */
  telemetry?: boolean;
}

export interface RuntimeLayer extends LayerBlob {
  architecture: ImageArchitecture;
  /** The shared libraries it carries and who needs them (for reports and tests). */
  libraries: ResolvedClosure;
  /** sha256 of the layer's inputs (file contents, modes, strip tool, format version). */
  cacheKey: string;
  fromCache: boolean;
  /** Wall time of this call: the full build, or the hashing of inputs on a cache hit. */
  buildMs: number;
}

type SourceFile = TarEntry & { type: 'file'; sourcePath: string };

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

const isRuntimeJs = (file: string) => file.endsWith('.js') || path.basename(file) === 'package.json';

async function findPackage(name: string, searchDirs: string[]): Promise<string> {
  for (const dir of searchDirs) {
    const candidate = path.join(dir, name);
    if (
      await stat(path.join(candidate, 'package.json')).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new Error(`${name} is not installed (looked in ${searchDirs.join(', ')}); run npm ci`);
}

/** The files of onnxruntime-node and onnxruntime-common that a linux/<nodeArch> process needs. */
async function onnxRuntimeEntries(nodeModulesDir: string, platform: ImagePlatform): Promise<SourceFile[]> {
  const nativePlatformDir = `bin/napi-v6/linux/${platform.nodeArch}`;
  const ortNode = await findPackage('onnxruntime-node', [nodeModulesDir]);
  const ortCommon = await findPackage('onnxruntime-common', [path.join(ortNode, 'node_modules'), nodeModulesDir]);
  const nativeDir = path.join(ortNode, nativePlatformDir);
  const nativeFiles = await listFiles(nativeDir).catch(() => {
    throw new Error(`onnxruntime-node has no ${nativePlatformDir} binaries in ${ortNode}`);
  });
  const pick = (pkgDir: string, files: string[], name: string) =>
    files.map((sourcePath) => ({
      type: 'file' as const,
      path: `/app/node_modules/${name}/${path.relative(pkgDir, sourcePath).split(path.sep).join('/')}`,
      sourcePath,
    }));
  return [
    ...pick(ortNode, [path.join(ortNode, 'package.json')], 'onnxruntime-node'),
    ...pick(ortNode, (await listFiles(path.join(ortNode, 'dist'))).filter(isRuntimeJs), 'onnxruntime-node'),
    ...pick(ortNode, nativeFiles, 'onnxruntime-node'),
    ...pick(ortCommon, [path.join(ortCommon, 'package.json')], 'onnxruntime-common'),
    // The bundle require()s it, and its package.json maps require to dist/cjs.
    ...pick(
      ortCommon,
      (await listFiles(path.join(ortCommon, 'dist', 'cjs'))).filter(isRuntimeJs),
      'onnxruntime-common',
    ),
  ];
}

const TELEMETRY_MODULE = path.join('runtime', 'server', 'telemetry.ts');
const NO_TELEMETRY_MODULE = path.join('runtime', 'server', 'noTelemetry.ts');

/** Resolves runtime/server's `./telemetry` to `./noTelemetry`: a bundle without OpenTelemetry. */
function withoutTelemetry(): Plugin {
  return {
    name: 'ferry-no-telemetry',
    setup(b) {
      b.onResolve({ filter: /^\.\/telemetry$/ }, (args) => {
        const resolved = path.join(args.resolveDir, 'telemetry.ts');
        if (!resolved.endsWith(TELEMETRY_MODULE)) return undefined;
        return { path: path.join(args.resolveDir, path.basename(NO_TELEMETRY_MODULE)) };
      });
    },
  };
}

/** Bundles the server entry into one CommonJS file; onnxruntime-node stays external (native). */
export async function bundleServer(entry: string, workingDir: string, options: BundleOptions = {}): Promise<Buffer> {
  const telemetry = options.telemetry ?? true;
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: workingDir, // the bundle's path comments are relative to this: same across clones
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['onnxruntime-node'],
    minify: false,
    sourcemap: false,
    write: false,
    logLevel: 'silent',
    metafile: !telemetry,
    plugins: telemetry ? [] : [withoutTelemetry()],
  }).catch((error: { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }) => {
    const first = error.errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new Error(`bundling the inference server ${entry} failed: ${first?.text ?? String(error)}${where}`);
  });
  if (!telemetry) {
    const otel = Object.keys(result.metafile!.inputs).filter((input) => input.includes('node_modules/@opentelemetry/'));
    if (otel.length > 0) {
      throw new Error(`${entry} bundled without telemetry still loads OpenTelemetry: ${otel.slice(0, 3).join(', ')}`);
    }
  }
  return Buffer.from(result.outputFiles[0]!.contents);
}

/** File digests by identity, so a process hashes the 99 MB node binary once, not once per image. */
const digestMemo = new Map<string, Promise<string>>();
async function fileDigest(file: string): Promise<string> {
  const info = await stat(file);
  const key = `${file}\0${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
  let digest = digestMemo.get(key);
  if (!digest) {
    digest = sha256File(file).then((d) => d.digest);
    digest.catch(() => digestMemo.delete(key));
    digestMemo.set(key, digest);
  }
  return digest;
}

/** The strip tool's identity: a new binutils may strip differently, so it is part of the cache key. */
async function stripToolVersion(platform: ImagePlatform): Promise<string> {
  const { stdout } = await run(platform.strip, ['--version']);
  return stdout.split('\n')[0]!.trim();
}

/** Strips symbols and debug info off `source` into `dest` with the platform's own strip. */
async function stripInto(platform: ImagePlatform, source: string, dest: string): Promise<void> {
  await run(platform.strip, ['--strip-all', '-o', dest, source]).catch((error: { stderr?: string }) => {
    throw new Error(`${platform.strip} ${source} failed: ${error.stderr?.trim() ?? String(error)}`);
  });
}

interface RuntimeInputs {
  platform: ImagePlatform;
  /** Every entry but node itself, which is stripped first. */
  entries: TarEntry[];
  nodeSource: string;
  libraries: ResolvedClosure;
}

async function collectRuntimeInputs(
  nodeModulesDir: string,
  platform: ImagePlatform,
  caCertificates: boolean,
): Promise<RuntimeInputs> {
  const ortFiles = await onnxRuntimeEntries(nodeModulesDir, platform);
  const nodeSource = inSysroot(platform, platform.nodeBinary);
  const elves = ortFiles
    .filter((f) => /\.(node|so(\.\d+)*)$/.test(f.path))
    .map((f) => ({ imagePath: f.path, sourcePath: f.sourcePath }));
  const libraries = await resolveSharedLibraries(platform, { imagePath: NODE_IN_IMAGE, sourcePath: nodeSource }, elves);
  const entries: TarEntry[] = [
    ...ortFiles,
    ...libraries.libraries.map(
      (lib): TarEntry => ({ type: 'file', path: lib.imagePath, sourcePath: lib.sourcePath, mode: 0o755 }),
    ),
    ...(libraries.interpreter.symlinkTarget
      ? [{ type: 'symlink' as const, path: libraries.interpreter.path, target: libraries.interpreter.symlinkTarget }]
      : []),
    ...systemEntries(CA_BUNDLE_PATH).filter((e) => caCertificates || e.path !== CA_BUNDLE_PATH),
  ];
  return { platform, entries, nodeSource, libraries };
}

async function runtimeCacheKey(inputs: RuntimeInputs): Promise<string> {
  const described = await Promise.all(
    inputs.entries.map(async (e) => {
      const { type, path: p, mode, uid, gid } = e;
      const content =
        e.type === 'file'
          ? 'bytes' in e
            ? sha256Digest(e.bytes)
            : [await fileDigest(e.sourcePath), ((await stat(e.sourcePath)).mode & 0o111) !== 0]
          : e.type === 'symlink'
            ? e.target
            : null;
      return [type, p, mode ?? null, uid ?? null, gid ?? null, content];
    }),
  );
  return sha256Digest(
    canonicalJson({
      format: RUNTIME_LAYER_FORMAT,
      architecture: inputs.platform.architecture,
      node: await fileDigest(inputs.nodeSource),
      strip: await stripToolVersion(inputs.platform),
      entries: described,
    }),
  ).slice('sha256:'.length);
}

type CachedRecord = Omit<LayerBlob, 'blobPath'>;

export async function buildRuntimeLayer(options: RuntimeLayerOptions = {}): Promise<RuntimeLayer> {
  const started = performance.now();
  const config = loadConfig();
  const platform = imagePlatform(options.architecture ?? 'amd64');
  const nodeModulesDir = path.resolve(options.nodeModulesDir ?? path.join(config.repoRoot, 'node_modules'));
  const layersDir = path.join(options.cacheDir ?? config.cacheDir, 'layers');

  await ensurePlatformInputs(platform);
  const inputs = await collectRuntimeInputs(nodeModulesDir, platform, options.caCertificates ?? true);
  const cacheKey = await runtimeCacheKey(inputs);
  const indexPath = path.join(layersDir, `runtime-${platform.architecture}-${cacheKey}.json`);
  const done = (record: CachedRecord, blobPath: string, fromCache: boolean): RuntimeLayer => ({
    ...record,
    blobPath,
    architecture: platform.architecture,
    libraries: inputs.libraries,
    cacheKey,
    fromCache,
    buildMs: performance.now() - started,
  });

  const cached = await readFile(indexPath, 'utf8').then(
    (text) => JSON.parse(text) as CachedRecord,
    () => null,
  );
  if (cached) {
    const blobPath = blobPathFor(layersDir, cached.digest);
    const size = await stat(blobPath).then(
      (s) => s.size,
      () => -1,
    );
    if (size === cached.size) return done(cached, blobPath, true);
  }

  await mkdir(layersDir, { recursive: true });
  const strippedNode = path.join(layersDir, `.node-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await stripInto(platform, inputs.nodeSource, strippedNode);
    const layer = await writeLayer(
      [...inputs.entries, { type: 'file', path: NODE_IN_IMAGE, sourcePath: strippedNode, mode: 0o755 }],
      layersDir,
    );
    const { blobPath, ...record } = layer;
    const tempIndex = `${indexPath}.${process.pid}.tmp`;
    await writeFile(tempIndex, JSON.stringify(record, null, 2));
    await rename(tempIndex, indexPath); // the index appears only once its blob is complete
    return done(record, blobPath, false);
  } finally {
    await rm(strippedNode, { force: true });
  }
}

/**
 * The server layer: the program of the image's kind (imageKinds.ts), bundled; by default
 * /app/server.js, the bundle of runtime/server/main.ts. `entry` replaces the kind's entry point.
 */
export async function buildServerLayer(options: RuntimeLayerOptions & { kind?: ImageKind } = {}): Promise<LayerBlob> {
  const config = loadConfig();
  const kind = imageKind(options.kind);
  const entry = path.resolve(options.entry ?? path.join(config.repoRoot, kind.entry));
  const bundle = await bundleServer(entry, config.repoRoot, { telemetry: kind.telemetry });
  return writeLayer(
    [{ type: 'file', path: kind.programInImage, bytes: bundle }],
    path.join(options.cacheDir ?? config.cacheDir, 'layers'),
  );
}
