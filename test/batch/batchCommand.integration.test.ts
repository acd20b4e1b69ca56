/**
 * `ferry batch` as a user runs it, against real images, the container runtime and the stack's object store:
 *
 *   1. a batch image (kind batch) from an OCI layout, under youki or runc, folder → folder, one bad request
 *      among them: exit 2, the bad one in errors/, every other response what the runner gives in-process
 *   2. an inference image pushed to the registry, named by reference, as a plain process, s3:// → s3://:
 *      the batch runner written into the image's root runs on its models; a rerun does nothing new
 *   3. the same inference image under the container runtime, folder → s3://: the container reaches the
 *      store on the host's network with the settings handed to it
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../lib/config';
import { locateBinary, RUNTIME_NAMES } from '../../lib/container/containerRuntime';
import { KIND_LABEL } from '../../lib/image/imageKinds';
import { buildModelImage, pushImage } from '../../lib/image/modelImage';
import { writeImageLayout } from '../../lib/oci/layout';
import { ObjectStore } from '../../lib/store/objectStore';
import { FolderLocation } from '../../runtime/batch/batchLocation';
import { runBatch } from '../../runtime/batch/batchRunner';
import { type TestRegistry, uniqueRepository, useRegistry } from '../oci/registryFixture';
import { mlpModel, writeModelDir } from '../runtime/onnxTestModels';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');
const MODEL = mlpModel({ inputDim: 6, hiddenDims: [16], outputDim: 4, seed: 21 });
const REQUESTS = 24;

let work: string;
let registry: TestRegistry;
let inputDir: string;
/** Response file name → bytes, as runBatch gives them in this process on the same model. */
let expected: Map<string, string>;
let containerRuntime: string | undefined;
const store = new ObjectStore(loadConfig().s3);
const prefix = `batch-test/${process.pid}-${Date.now().toString(36)}`;

async function ferry(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(ferryBin, args, {
      env: { ...process.env, FERRY_REGISTRY_URL: registry.url },
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

function request(seed: number): string {
  const data = Array.from({ length: 3 * 6 }, (_, i) => Math.sin(seed + i / 7));
  return JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 6], data }] });
}

async function responsesIn(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.response.json')).sort()) {
    out.set(name, await readFile(path.join(dir, name), 'utf8'));
  }
  return out;
}

async function responsesInBucket(keyPrefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of (await store.list(`${keyPrefix}/`)).filter((k) => k.endsWith('.response.json')).sort()) {
    out.set(key.slice(keyPrefix.length + 1), (await store.getBytes(key)).toString('utf8'));
  }
  return out;
}

before(async () => {
  registry = await useRegistry();
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-batch-cli-'));
  await writeFile(path.join(work, 'mlp.onnx'), MODEL);
  inputDir = path.join(work, 'in');
  await mkdir(inputDir);
  for (let i = 0; i < REQUESTS; i++) {
    const name = `req-${String(i).padStart(2, '0')}.json`;
    await writeFile(path.join(inputDir, name), request(i));
    await store.putBytes(`${prefix}/in/${name}`, Buffer.from(request(i)));
  }
  const modelDir = await writeModelDir(path.join(work, 'models'), [{ name: 'mlp', version: '1', bytes: MODEL }]);
  const reference = path.join(work, 'reference');
  await runBatch({ modelDir, input: new FolderLocation(inputDir), output: new FolderLocation(reference) });
  expected = await responsesIn(reference);
  assert.equal(expected.size, REQUESTS);
  for (const name of RUNTIME_NAMES) {
    if (
      await locateBinary(name).then(
        () => true,
        () => false,
      )
    ) {
      containerRuntime = name;
      break;
    }
  }
});

after(async () => {
  for (const key of await store.list(`${prefix}/`).catch(() => [] as string[])) await store.delete(key);
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('ferry batch', () => {
  it('a batch image from a layout, in a container: folder to folder, a bad request recorded, exit 2', async (t) => {
    if (!containerRuntime)
      return t.skip('neither youki nor runc is installed (bash infra/install-container-runtime.sh)');
    const image = await buildModelImage({
      models: [{ name: 'mlp', version: '1', onnxPath: path.join(work, 'mlp.onnx') }],
      kind: 'batch',
      blobDir: path.join(work, 'blobs'),
    });
    assert.deepEqual(image.config.config.Entrypoint, ['/usr/bin/node', '/app/batch.js']);
    assert.equal(image.config.config.Labels?.[KIND_LABEL], 'batch');
    assert.equal(image.config.config.ExposedPorts, undefined);
    const layout = path.join(work, 'batch-layout');
    await writeImageLayout(image, layout);

    const input = path.join(work, 'in-with-bad');
    await mkdir(input);
    for (const name of await readdir(inputDir))
      await writeFile(path.join(input, name), await readFile(path.join(inputDir, name)));
    await writeFile(
      path.join(input, 'bad.json'),
      '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}',
    );
    const output = path.join(work, 'out-container');
    const { code, out } = await ferry([
      'batch',
      layout,
      '--input',
      input,
      '--output',
      output,
      '--runtime',
      containerRuntime,
      '--concurrency',
      '3',
    ]);
    assert.equal(code, 2, out);
    assert.match(out, new RegExp(`container ferry-[0-9a-f]+ under ${containerRuntime}`));
    assert.match(out, /\d+\/25 files/);
    assert.match(out, /Done: 24 answered now, 0 answered before, 1 failed, of 25/);
    assert.match(out, /failed {2}bad\.json \(400\)/);
    assert.deepEqual(await responsesIn(output), expected);
    const error = JSON.parse(await readFile(path.join(output, 'errors', 'bad.json.error.json'), 'utf8'));
    assert.equal(error.status, 400);
  });

  it('an inference image by reference, as a process, s3:// to s3://; a rerun answers nothing again', async () => {
    const image = await buildModelImage({
      models: [{ name: 'mlp', version: '1', onnxPath: path.join(work, 'mlp.onnx') }],
      blobDir: path.join(work, 'blobs'),
    });
    assert.equal(image.config.config.Labels?.[KIND_LABEL], 'inference');
    const repository = uniqueRepository('batch');
    await pushImage(image, registry.url, repository, 'v1');
    const ref = `${new URL(registry.url).host}/${repository}:v1`;
    const bucket = loadConfig().s3.bucket;
    const args = ['batch', ref, '--input', `s3://${bucket}/${prefix}/in`, '--output', `s3://${bucket}/${prefix}/out`];
    const first = await ferry([...args, '--runtime', 'process']);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /inference image: running the batch runner on its runtime and models/);
    assert.match(first.out, /Done: 24 answered now, 0 answered before, 0 failed, of 24/);
    assert.deepEqual(await responsesInBucket(`${prefix}/out`), expected);
    const summary = JSON.parse((await store.getBytes(`${prefix}/out/batch-summary.json`)).toString('utf8'));
    assert.equal(summary.succeeded, REQUESTS);

    const again = await ferry([...args, '--runtime', 'process']);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /Done: 0 answered now, 24 answered before, 0 failed, of 24/);
  });

  it('the inference image under the container runtime: folder to s3://', async (t) => {
    if (!containerRuntime) return t.skip('neither youki nor runc is installed');
    const image = await buildModelImage({
      models: [{ name: 'mlp', version: '1', onnxPath: path.join(work, 'mlp.onnx') }],
      blobDir: path.join(work, 'blobs'),
    });
    const repository = uniqueRepository('batch-container');
    await pushImage(image, registry.url, repository, 'v1');
    const bucket = loadConfig().s3.bucket;
    const { code, out } = await ferry([
      'batch',
      `${new URL(registry.url).host}/${repository}:v1`,
      '--input',
      inputDir,
      '--output',
      `s3://${bucket}/${prefix}/from-container`,
      '--runtime',
      containerRuntime,
    ]);
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`under ${containerRuntime}`));
    assert.deepEqual(await responsesInBucket(`${prefix}/from-container`), expected);
  });

  it('refuses what it cannot run, in one line', async () => {
    const missing = await ferry(['batch', path.join(work, 'no-such-layout'), '--input', inputDir, '--output', work]);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /ferry: no such folder/);
    const badInput = await ferry(['batch', 'x/y:z', '--input', path.join(work, 'nope'), '--output', work]);
    assert.match(badInput.out, /ferry: --input .* is not a folder/);
    const badConcurrency = await ferry(['batch', 'x/y:z', '--input', inputDir, '--output', work, '--concurrency', '0']);
    assert.match(badConcurrency.out, /--concurrency must be an integer from 1 to 1024/);
  });
});
