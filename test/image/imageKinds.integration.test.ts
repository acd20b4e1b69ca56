/**
 * The three image kinds built from the same model: the same runtime base and model layers, their own
 * program and config. The edge image is arm64 alone by default, its server layer has no OpenTelemetry
 * and its runtime layer no CA certificates, so both are smaller than the inference image's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { KIND_LABEL } from '../../lib/image/imageKinds';
import { buildModelImage, buildModelImageIndex } from '../../lib/image/modelImage';
import { ensurePlatformInputs, imagePlatform } from '../../lib/image/platforms';
import { buildRuntimeLayer } from '../../lib/image/runtimeLayer';
import { sha256Digest } from '../../lib/oci/digest';
import { openLayoutImage } from '../../lib/oci/sourcedImage';
import { mlpModel } from '../runtime/onnxTestModels';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');

/** The paths in a gzip layer blob. */
async function listTar(blobPath: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', blobPath], { maxBuffer: 16 << 20 });
  return stdout.split('\n').filter(Boolean);
}

let work: string;
let onnxPath: string;

before(async () => {
  await ensurePlatformInputs(imagePlatform('arm64'));
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-image-kinds-'));
  onnxPath = path.join(work, 'mlp.onnx');
  await writeFile(onnxPath, mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 2, seed: 4 }));
});
after(() => rm(work, { recursive: true, force: true }));

test('inference, batch and edge images: program, label, platforms, and what the edge leaves out', {
  timeout: 600_000,
}, async () => {
  const models = [{ name: 'mlp', version: '1', onnxPath }];
  const blobDir = path.join(work, 'blobs');
  const inference = await buildModelImage({ models, blobDir, architecture: 'arm64' });
  const batch = await buildModelImage({ models, blobDir, architecture: 'arm64', kind: 'batch' });
  const edge = await buildModelImageIndex({ models, blobDir, kind: 'edge' });

  assert.deepEqual(
    edge.images.map((i) => i.config.architecture),
    ['arm64'],
    'an edge image is built for arm64 unless asked otherwise',
  );
  const edgeImage = edge.images[0]!;
  for (const [image, kind, program] of [
    [inference, 'inference', '/app/server.js'],
    [batch, 'batch', '/app/batch.js'],
    [edgeImage, 'edge', '/app/server.js'],
  ] as const) {
    assert.equal(image.config.config.Labels?.[KIND_LABEL], kind);
    assert.deepEqual(image.config.config.Entrypoint, ['/usr/bin/node', program], kind);
  }
  assert.deepEqual(Object.keys(inference.config.config.ExposedPorts ?? {}), ['8000/tcp']);
  assert.equal(batch.config.config.ExposedPorts, undefined);
  assert.ok(batch.config.config.Env?.includes('FERRY_BATCH_INPUT=/batch/input'));

  // Same runtime layer for inference and batch, the same model layer for all three.
  const [iRuntime, iServer, iModel] = inference.layers;
  const [bRuntime, bServer, bModel] = batch.layers;
  const [eRuntime, eServer, eModel] = edgeImage.layers;
  assert.equal(bRuntime!.digest, iRuntime!.digest);
  assert.equal(bModel!.digest, iModel!.digest);
  assert.equal(eModel!.digest, iModel!.digest);
  assert.notEqual(bServer!.digest, iServer!.digest);

  // The edge's layers: smaller, and without what they leave out.
  assert.ok(eRuntime!.uncompressedSize < iRuntime!.uncompressedSize);
  assert.ok(
    eServer!.uncompressedSize * 5 < iServer!.uncompressedSize,
    `${eServer!.uncompressedSize} vs ${iServer!.uncompressedSize}`,
  );
  const edgeRuntimeFiles = await listTar(eRuntime!.blobPath);
  assert.ok(!edgeRuntimeFiles.some((f) => f.includes('ca-certificates.crt')));
  assert.ok((await listTar(iRuntime!.blobPath)).some((f) => f.includes('ca-certificates.crt')));
  assert.ok(edgeRuntimeFiles.some((f) => f.endsWith('usr/bin/node')));
  const cached = await buildRuntimeLayer({ architecture: 'arm64', caCertificates: false });
  assert.equal(cached.digest, eRuntime!.digest, 'the edge runtime layer is cached and reproducible');
});

test('ferry image build --kind edge --optimization: the int8 plan of a ferry optimize report', {
  timeout: 600_000,
}, async () => {
  const model = path.join(work, 'wide.onnx');
  await writeFile(model, mlpModel({ inputDim: 64, hiddenDims: [256], outputDim: 8, seed: 9 }));
  const optimized = path.join(work, 'optimized');
  const ferry = (args: string[]) => run(ferryBin, args, { timeout: 480_000, maxBuffer: 16 << 20 });
  // A loose budget, so int8 is within it whatever its drift on random weights; fp16 is cheaper to be best.
  await ferry([
    'optimize',
    model,
    '--out',
    optimized,
    '--techniques',
    'int8-dynamic,fp16-weights',
    '--accuracy-budget',
    'cosine=0.5',
    '--measure-ms',
    '200',
  ]);
  const report = JSON.parse(await readFile(path.join(optimized, 'report.json'), 'utf8'));
  const int8 = report.table.candidates.find((c: { id: string }) => c.id === 'int8-dynamic');
  assert.equal(int8?.withinBudget, true, JSON.stringify(int8));

  const layout = path.join(work, 'edge-layout');
  const { stdout } = await ferry([
    'image',
    'build',
    model,
    '--kind',
    'edge',
    '--optimization',
    path.join(optimized, 'report.json'),
    '--out',
    layout,
  ]);
  assert.match(stdout, /Plan int8-dynamic: the int8 plan within the accuracy budget/);
  assert.match(stdout, /Building the edge image of wide:sha-[0-9a-f]{12} for linux\/arm64/);
  const image = await openLayoutImage(layout);
  assert.deepEqual(
    image.platforms.map((p) => p.architecture),
    ['arm64'],
  );
  const int8Bytes = await readFile(path.resolve(optimized, report.files['int8-dynamic']));
  const label = image.platforms[0]!.config.config.Labels?.['ai.ferry.models'];
  assert.equal(label, `wide:sha-${sha256Digest(int8Bytes).slice(7, 19)}`, 'the image serves the int8 model file');
  assert.equal(image.platforms[0]!.config.config.Labels?.[KIND_LABEL], 'edge');
});
