/**
 * Several models in one server process, each loaded with its own onnxruntime session options from
 * ferry-models.json — checked through an effect onnxruntime makes visible: the optimized graph it writes
 * to `optimizedModelFilePath` (fused nodes at level "all", the original nodes with optimization
 * "disabled") — and each answering exactly like a session created in-process with the same options.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { type InferenceServer, startInferenceServer } from '../../runtime/server/inferenceServer';
import { gatherModel, mlpModel, writeModelDir } from './onnxTestModels';

let dir: string;
let server: InferenceServer;
const mlpA = mlpModel({ inputDim: 6, hiddenDims: [12], outputDim: 2, seed: 31 });
const mlpB = mlpModel({ inputDim: 6, hiddenDims: [12], outputDim: 2, seed: 32 });
const gather = gatherModel({ rows: 10, dim: 2 });

const optionsFor = (d: string) => ({
  fused: {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 1,
    optimizedModelFilePath: path.join(d, 'fused.opt.onnx'),
  },
  plain: {
    graphOptimizationLevel: 'disabled',
    executionMode: 'sequential',
    optimizedModelFilePath: path.join(d, 'plain.opt.onnx'),
  },
  lookup: { interOpNumThreads: 1, intraOpNumThreads: 2 },
});

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-multimodel-'));
  const o = optionsFor(dir);
  await writeModelDir(dir, [
    { name: 'fused', version: '1', bytes: mlpA, sessionOptions: o.fused },
    { name: 'plain', version: '1', bytes: mlpB, sessionOptions: o.plain, batching: true },
    { name: 'lookup', version: '3', bytes: gather, sessionOptions: o.lookup },
  ]);
  server = await startInferenceServer({ modelDir: dir, port: 0 });
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

test('each model was loaded with its own session options', async () => {
  const fused = (await readFile(path.join(dir, 'fused.opt.onnx'))).toString('latin1');
  const plain = (await readFile(path.join(dir, 'plain.opt.onnx'))).toString('latin1');
  assert.match(fused, /FusedGemm/, 'level "all" fused MatMul+Add+Relu');
  assert.match(plain, /MatMul/, 'optimization "disabled" kept the original nodes');
  assert.doesNotMatch(plain, /Gemm/);
});

test('each model answers as a session created in-process with the same options', async () => {
  const o = optionsFor(await mkdtemp(path.join(os.tmpdir(), 'ferry-multimodel-direct-')));
  const x = Float32Array.from({ length: 12 }, (_, i) => Math.cos(i));
  for (const [name, bytes, options] of [
    ['fused', mlpA, o.fused],
    ['plain', mlpB, o.plain],
  ] as const) {
    const session = await ort.InferenceSession.create(bytes, options as ort.InferenceSession.SessionOptions);
    const want = (await session.run({ input: new ort.Tensor('float32', x, [2, 6]) })).output.data as Float32Array;
    await session.release();
    const res = await fetch(`${server.url}/v2/models/${name}/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 6], data: Array.from(x) }] }),
    });
    const json = (await res.json()) as any;
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.equal(json.model_name, name);
    assert.deepEqual(json.outputs[0].data, Array.from(want), name);
  }
  const lookup = await fetch(`${server.url}/v2/models/lookup/versions/3/infer`, {
    method: 'POST',
    body: JSON.stringify({ inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 2], data: [9, 0] }] }),
  });
  const json = (await lookup.json()) as any;
  assert.equal(lookup.status, 200, JSON.stringify(json));
  assert.deepEqual(json.outputs[0].shape, [1, 2, 2]);
  assert.deepEqual(((await (await fetch(`${server.url}/v2/models/lookup`)).json()) as any).versions, ['3']);
});

test('each model has its own cold start in the metrics', async () => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  for (const [name, version] of [
    ['fused', '1'],
    ['plain', '1'],
    ['lookup', '3'],
  ]) {
    assert.match(
      text,
      new RegExp(`^ferry_inference_cold_starts_total\\{model="${name}",version="${version}"\\} 1$`, 'm'),
    );
    const sum = new RegExp(
      `^ferry_inference_cold_start_duration_seconds_sum\\{model="${name}",version="${version}"\\} ([0-9.e-]+)$`,
      'm',
    ).exec(text);
    assert.ok(sum && Number(sum[1]) > 0 && Number(sum[1]) < 30, `${name}: load time ${sum?.[1]} s`);
  }
});
