/**
 * The batch runner over folders with real onnxruntime sessions: answers equal the inference server's,
 * bad requests fail alone with their error recorded, and a rerun does only what is not finished.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FolderLocation } from '../../runtime/batch/batchLocation';
import { type BatchProgress, runBatch } from '../../runtime/batch/batchRunner';
import { startInferenceServer } from '../../runtime/server/inferenceServer';
import { mlpModel, writeModelDir } from '../runtime/onnxTestModels';

const INPUT_DIM = 4;

function request(seed: number, rows = 2): object {
  const data = Array.from({ length: rows * INPUT_DIM }, (_, i) => Math.sin(seed * 31 + i));
  return { inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, INPUT_DIM], data }] };
}

describe('batch runner', () => {
  let work: string;
  let modelDir: string;
  let inputDir: string;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'ferry-batch-run-'));
    modelDir = await writeModelDir(path.join(work, 'models'), [
      { name: 'mlp', version: '1', bytes: mlpModel({ inputDim: INPUT_DIM, hiddenDims: [8], outputDim: 3, seed: 1 }) },
    ]);
    inputDir = path.join(work, 'in');
    await mkdir(path.join(inputDir, 'more'), { recursive: true });
    for (let i = 0; i < 12; i++)
      await writeFile(path.join(inputDir, `r${String(i).padStart(2, '0')}.json`), JSON.stringify(request(i)));
    await writeFile(path.join(inputDir, 'more', 'nested.json'), JSON.stringify({ id: 'mine', ...request(99, 1) }));
    // Two bad ones: the wrong shape (the server's 400) and not JSON at all.
    await writeFile(
      path.join(inputDir, 'bad-shape.json'),
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] }),
    );
    await writeFile(path.join(inputDir, 'broken.json'), '{"inputs": [');
    await writeFile(path.join(inputDir, 'README.txt'), 'not a request');
  });
  after(() => rm(work, { recursive: true, force: true }));

  test('answers every request as the server does; failures are recorded and do not stop the batch', async () => {
    const outputDir = path.join(work, 'out');
    const seen: BatchProgress[] = [];
    const summary = await runBatch({
      modelDir,
      input: new FolderLocation(inputDir),
      output: new FolderLocation(outputDir),
      concurrency: 3,
      onProgress: (p) => seen.push(p),
    });
    assert.equal(summary.total, 15);
    assert.equal(summary.succeeded, 13);
    assert.equal(summary.failed, 2);
    assert.equal(summary.alreadyDone, 0);
    assert.equal(summary.interrupted, false);
    assert.deepEqual(
      summary.failures.map((f) => [f.request, f.status]),
      [
        ['bad-shape.json', 400],
        ['broken.json', 400],
      ],
    );
    assert.match(summary.failures[0]!.error, /shape/);
    assert.equal(seen.length, 16, 'one report at the start and one per request');
    assert.deepEqual(seen.at(-1), { total: 15, alreadyDone: 0, succeeded: 13, failed: 2 });

    const onDisk = JSON.parse(await readFile(path.join(outputDir, 'batch-summary.json'), 'utf8'));
    assert.equal(onDisk.succeeded, 13);
    const error = JSON.parse(await readFile(path.join(outputDir, 'errors', 'broken.json.error.json'), 'utf8'));
    assert.equal(error.status, 400);
    assert.match(error.error, /malformed JSON/);

    // The same request over HTTP gets the same bytes (given the same id: the batch's is the file name).
    const server = await startInferenceServer({ modelDir, port: 0 });
    try {
      for (const [file, body] of [
        ['r03.json', { id: 'r03.json', ...request(3) }],
        ['more/nested.json', { id: 'mine', ...request(99, 1) }],
      ] as const) {
        const http = await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify(body) });
        assert.equal(await readFile(path.join(outputDir, `${file}.response.json`), 'utf8'), await http.text());
      }
    } finally {
      await server.close();
    }
  });

  test('a rerun skips what is answered, retries what failed, and drops the error record of a fixed request', async () => {
    const outputDir = path.join(work, 'out-rerun');
    const input = new FolderLocation(inputDir);
    const output = new FolderLocation(outputDir);
    await runBatch({ modelDir, input, output, concurrency: 2 });
    const answered = path.join(outputDir, 'r05.json.response.json');
    const before = await stat(answered);

    const second = await runBatch({ modelDir, input, output, concurrency: 2 });
    assert.deepEqual([second.alreadyDone, second.succeeded, second.failed], [13, 0, 2]);
    assert.equal((await stat(answered)).mtimeMs, before.mtimeMs, 'an answered request is not written again');

    const fixedInput = path.join(work, 'in-fixed');
    await mkdir(fixedInput);
    await writeFile(path.join(fixedInput, 'broken.json'), JSON.stringify(request(7)));
    const third = await runBatch({ modelDir, input: new FolderLocation(fixedInput), output, concurrency: 2 });
    assert.deepEqual([third.total, third.succeeded, third.failed], [1, 1, 0]);
    await assert.rejects(stat(path.join(outputDir, 'errors', 'broken.json.error.json')), { code: 'ENOENT' });
  });

  test('an image with several models needs the model named; an unknown one is a clear error', async () => {
    const twoModels = await writeModelDir(path.join(work, 'two'), [
      { name: 'a', version: '1', bytes: mlpModel({ inputDim: INPUT_DIM, hiddenDims: [4], outputDim: 2 }) },
      { name: 'b', version: '1', bytes: mlpModel({ inputDim: INPUT_DIM, hiddenDims: [4], outputDim: 2 }) },
    ]);
    const io = { input: new FolderLocation(inputDir), output: new FolderLocation(path.join(work, 'out-two')) };
    await assert.rejects(runBatch({ modelDir: twoModels, ...io }), /serves 2 models \(a, b\): say which one/);
    await assert.rejects(runBatch({ modelDir: twoModels, ...io, model: 'c' }), /unknown model "c"/);
    const summary = await runBatch({ modelDir: twoModels, ...io, model: 'b:1' });
    assert.deepEqual(summary.model, { name: 'b', version: '1' });
  });
});
