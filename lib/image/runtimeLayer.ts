/**
 * The Ferry runtime layer: the inference server bundled into one file plus the onnxruntime-node
 * native binding it loads at run time (linux/x64 only).
 *
 *   /app/server.js                                   esbuild bundle of runtime/server/main.ts
 *   /app/node_modules/onnxruntime-node/{package.json,dist/*.js,bin/napi-v6/linux/x64/*}
 *   /app/node_modules/onnxruntime-common/{package.json,dist/cjs/*.js}
 *
 * It is the same for every model, so it sits below the model layer and a new model version
 * re-pushes nothing of it. Building it means hashing and gzipping ~46 MB of native library, so the
 * blob is cached under `<cacheDir>/layers/`, keyed by a hash of exactly what goes into it.
 */
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { build } from 'esbuild';
import { loadConfig } from '../config';
import { sha256Digest, sha256File } from '../oci/digest';
import { canonicalJson } from '../oci/image';
import { blobPathFor, type LayerBlob, writeLayer } from '../oci/layer';
import type { TarEntry } from '../oci/tar';

/** Bump when the layout or build settings change, so old cache entries stop matching. */
const RUNTIME_LAYER_FORMAT = 1;
const NATIVE_PLATFORM_DIR = 'bin/napi-v6/linux/x64';

export interface RuntimeLayerOptions {
  /** Server entry point; default `<repo>/runtime/server/main.ts`. */
  entry?: string;
  /** Where onnxruntime-node is installed; default `<repo>/node_modules`. */
  nodeModulesDir?: string;
  /** Cache root; default the config's cacheDir (layers go in `<cacheDir>/layers`). */
  cacheDir?: string;
}

export interface RuntimeLayer extends LayerBlob {
  /** sha256 of the layer's inputs (bundle bytes, file contents, modes, format version). */
  cacheKey: string;
  fromCache: boolean;
  /** Wall time of this call: the full build, or the hashing of inputs on a cache hit. */
  buildMs: number;
}

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

/** The files of onnxruntime-node and onnxruntime-common that a linux/x64 process needs. */
async function onnxRuntimeEntries(
  nodeModulesDir: string,
): Promise<Array<TarEntry & { type: 'file'; sourcePath: string }>> {
  const ortNode = await findPackage('onnxruntime-node', [nodeModulesDir]);
  const ortCommon = await findPackage('onnxruntime-common', [path.join(ortNode, 'node_modules'), nodeModulesDir]);
  const nativeDir = path.join(ortNode, NATIVE_PLATFORM_DIR);
  const nativeFiles = await listFiles(nativeDir).catch(() => {
    throw new Error(`onnxruntime-node has no ${NATIVE_PLATFORM_DIR} binaries in ${ortNode}`);
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

/** Bundles the server entry into one CommonJS file; onnxruntime-node stays external (native). */
export async function bundleServer(entry: string, workingDir: string): Promise<Buffer> {
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
  }).catch((error: { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }) => {
    const first = error.errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new Error(`bundling the inference server ${entry} failed: ${first?.text ?? String(error)}${where}`);
  });
  return Buffer.from(result.outputFiles[0]!.contents);
}

export async function buildRuntimeLayer(options: RuntimeLayerOptions = {}): Promise<RuntimeLayer> {
  const started = performance.now();
  const config = loadConfig();
  const entry = path.resolve(options.entry ?? path.join(config.repoRoot, 'runtime', 'server', 'main.ts'));
  const nodeModulesDir = path.resolve(options.nodeModulesDir ?? path.join(config.repoRoot, 'node_modules'));
  const layersDir = path.join(options.cacheDir ?? config.cacheDir, 'layers');

  const bundle = await bundleServer(entry, config.repoRoot);
  const ortFiles = await onnxRuntimeEntries(nodeModulesDir);
  const entries: TarEntry[] = [{ type: 'file', path: '/app/server.js', bytes: bundle }, ...ortFiles];

  const inputs = await Promise.all(
    ortFiles.map(async (f) => [
      f.path,
      (await sha256File(f.sourcePath)).digest,
      ((await stat(f.sourcePath)).mode & 0o111) !== 0,
    ]),
  );
  const cacheKey = sha256Digest(
    canonicalJson({ format: RUNTIME_LAYER_FORMAT, bundle: sha256Digest(bundle), inputs }),
  ).slice('sha256:'.length);
  const indexPath = path.join(layersDir, `runtime-${cacheKey}.json`);

  const cached = await readFile(indexPath, 'utf8').then(
    (text) => JSON.parse(text) as Omit<LayerBlob, 'blobPath'>,
    () => null,
  );
  if (cached) {
    const blobPath = blobPathFor(layersDir, cached.digest);
    const size = await stat(blobPath).then(
      (s) => s.size,
      () => -1,
    );
    if (size === cached.size) {
      return { ...cached, blobPath, cacheKey, fromCache: true, buildMs: performance.now() - started };
    }
  }

  const layer = await writeLayer(entries, layersDir);
  await mkdir(layersDir, { recursive: true });
  const tempIndex = `${indexPath}.${process.pid}.tmp`;
  const { blobPath: _ignored, ...record } = layer;
  await writeFile(tempIndex, JSON.stringify(record, null, 2));
  await rename(tempIndex, indexPath); // the index appears only once its blob is complete
  return { ...layer, cacheKey, fromCache: false, buildMs: performance.now() - started };
}
