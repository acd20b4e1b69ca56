/**
 * `ferry serve model.onnx ...`: the same inference server the images run, on model files given directly.
 * `ferry serve ferry-models.json` (or a directory holding one) serves a model manifest as it is, with
 * each model's session options and dynamic batching (see runtime/server/modelRepository.ts):
 *
 *   {"models": [{"name": "mlp", "version": "1", "path": "mlp.onnx",
 *                "sessionOptions": {"intraOpNumThreads": 1}, "batching": {"maxBatchSize": 32, "maxQueueDelayMs": 0}}]}
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_MANIFEST_FILE, startInferenceServer } from '../../runtime/server';

export interface ServeOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Dynamic batching for every model given as a file (a manifest says it per model). */
  batching?: { maxBatchSize?: number; maxQueueDelayMs?: number };
  /** onnxruntime session options for every model given as a file (a manifest says them per model). */
  sessionOptions?: { intraOpNumThreads?: number };
}

export async function serveModelFiles(files: string[], port: number, options: ServeOptions = {}): Promise<void> {
  const manifest = files.length === 1 ? manifestPathOf(files[0]) : undefined;
  if (manifest && (options.batching || options.sessionOptions)) {
    throw new Error(
      '--batch and --threads apply to .onnx files; a manifest sets "batching" and "sessionOptions" per model',
    );
  }
  const { modelDir, names } = manifest ? await modelDirFromManifest(manifest) : await modelDirFromFiles(files, options);
  const server = await startInferenceServer({ modelDir, port, host: options.host, log: (m) => console.log(m) });
  console.log(`Serving ${names.join(', ')} at ${server.url}/v2/models/<name>/infer`);
  const stop = () => server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** The manifest a single argument names: a .json file, or a directory with ferry-models.json. */
function manifestPathOf(arg: string): string | undefined {
  if (arg.toLowerCase().endsWith('.json')) return path.resolve(arg);
  if (existsSync(arg) && statSync(arg).isDirectory()) {
    const file = path.join(arg, MODEL_MANIFEST_FILE);
    if (existsSync(file)) return path.resolve(file);
    throw new Error(`${arg} is a directory without ${MODEL_MANIFEST_FILE}: give .onnx files or a model manifest`);
  }
  return undefined;
}

async function modelDirFromManifest(file: string): Promise<{ modelDir: string; names: string[] }> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { models?: Array<{ name: string; path: string }> };
  if (path.basename(file) === MODEL_MANIFEST_FILE)
    return { modelDir: path.dirname(file), names: (parsed.models ?? []).map((m) => m.name) };
  // Another file name: the server reads <dir>/ferry-models.json, so write one whose paths point back.
  const modelDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-serve-'));
  const models = (parsed.models ?? []).map((m) => ({
    ...m,
    path: typeof m.path === 'string' ? path.resolve(path.dirname(file), m.path) : m.path,
  }));
  await writeFile(path.join(modelDir, MODEL_MANIFEST_FILE), JSON.stringify({ ...parsed, models }, null, 2));
  return { modelDir, names: models.map((m) => m.name) };
}

async function modelDirFromFiles(
  files: string[],
  options: ServeOptions,
): Promise<{ modelDir: string; names: string[] }> {
  const modelDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-serve-'));
  const models = [];
  for (const file of files) {
    const name = path
      .basename(file)
      .replace(/\.onnx$/i, '')
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-');
    await mkdir(path.join(modelDir, name), { recursive: true });
    await symlink(path.resolve(file), path.join(modelDir, name, 'model.onnx'));
    models.push({
      name,
      version: '1',
      path: `${name}/model.onnx`,
      ...(options.sessionOptions ? { sessionOptions: options.sessionOptions } : {}),
      ...(options.batching ? { batching: options.batching } : {}),
    });
  }
  await writeFile(path.join(modelDir, MODEL_MANIFEST_FILE), JSON.stringify({ models }, null, 2));
  return { modelDir, names: models.map((m) => m.name) };
}
