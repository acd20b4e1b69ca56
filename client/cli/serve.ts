/** `ferry serve model.onnx ...`: the same inference server the images run, on model files given directly. */
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startInferenceServer } from '../../runtime/server';

export async function serveModelFiles(files: string[], port: number): Promise<void> {
  const modelDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-serve-'));
  const models = [];
  for (const file of files) {
    const name = path.basename(file).replace(/\.onnx$/i, '').toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(modelDir, name), { recursive: true }));
    await symlink(path.resolve(file), path.join(modelDir, name, 'model.onnx'));
    models.push({ name, version: '1', path: `${name}/model.onnx` });
  }
  await writeFile(path.join(modelDir, 'ferry-models.json'), JSON.stringify({ models }, null, 2));
  const server = await startInferenceServer({ modelDir, port });
  console.log(`Serving ${models.map((m) => m.name).join(', ')} at ${server.url}/v2/models/<name>/infer`);
  const stop = () => server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
