/**
 * Dynamic batching on real onnxruntime sessions over real HTTP: concurrent requests are merged (seen in
 * the batch-size and executions metrics), every client gets exactly the rows onnxruntime computes for
 * its own input run alone in-process, incompatible shapes do not merge, one failing request does not
 * fail its batch mates, and a model whose outputs turn out not to be per row stops being batched.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { type InferenceServer, startInferenceServer } from '../../runtime/server/inferenceServer';
import {
  echoAllDatatypesModel,
  fixedBatchModel,
  gatherModel,
  mlpModel,
  negateModel,
  transposeModel,
  writeModelDir,
} from './onnxTestModels';

const mlp = mlpModel({ inputDim: 8, hiddenDims: [32, 16], outputDim: 4, seed: 21 });
const heavyMlp = mlpModel({ inputDim: 512, hiddenDims: [1024, 1024], outputDim: 16, seed: 22 });
const gather = gatherModel({ rows: 50, dim: 3 });
/** Long enough that requests sent together always meet in the queue, short enough for a fast test. */
const WAIT = { maxBatchSize: 64, maxQueueDelayMs: 150 };

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

function rand(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 16807) % 2147483647;
    return (x / 2147483647) * 2 - 1;
  };
}

/** Reads one sample of the Prometheus text: name{model="m",…} value. */
function sample(text: string, name: string, model: string, extra = ''): number | undefined {
  const escaped = name.replace(/[+]/g, '\\+');
  const m = new RegExp(`^${escaped}\\{model="${model}",version="1"${extra}\\} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('dynamic batching', () => {
  let dir: string;
  let server: InferenceServer;
  const logged: string[] = [];
  const direct = new Map<string, ort.InferenceSession>();
  const metrics = async () => (await fetch(`${server.url}/metrics`)).text();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-batching-'));
    const models = [
      { name: 'mlp', version: '1', bytes: mlp, batching: WAIT },
      { name: 'mlp-unbatched', version: '1', bytes: mlp },
      { name: 'mlp-small-batches', version: '1', bytes: mlp, batching: { maxBatchSize: 8, maxQueueDelayMs: 150 } },
      { name: 'heavy', version: '1', bytes: heavyMlp, batching: true },
      { name: 'gather', version: '1', bytes: gather, batching: WAIT },
      { name: 'negate', version: '1', bytes: negateModel(), batching: WAIT },
      { name: 'echo', version: '1', bytes: echoAllDatatypesModel(), batching: WAIT },
      { name: 'transpose', version: '1', bytes: transposeModel(), batching: WAIT },
    ];
    await writeModelDir(dir, models);
    server = await startInferenceServer({ modelDir: dir, port: 0, log: (m) => logged.push(m) });
    for (const m of models) direct.set(m.name, await ort.InferenceSession.create(m.bytes));
  });
  after(async () => {
    await server.close();
    for (const s of direct.values()) await s.release();
    await rm(dir, { recursive: true, force: true });
  });

  /** n concurrent MLP requests of 1–3 rows; each answer must equal session.run on that request alone. */
  async function concurrentMlp(model: string, n: number, rowsOf: (i: number) => number): Promise<number> {
    const next = rand(n * 7 + model.length);
    const inputs = Array.from({ length: n }, (_, i) => Float32Array.from({ length: rowsOf(i) * 8 }, next));
    const responses = await Promise.all(
      inputs.map((x) =>
        post(`${server.url}/v2/models/${model}/infer`, {
          inputs: [{ name: 'input', datatype: 'FP32', shape: [x.length / 8, 8], data: Array.from(x) }],
        }),
      ),
    );
    for (const [i, res] of responses.entries()) {
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const alone = await direct
        .get(model)!
        .run({ input: new ort.Tensor('float32', inputs[i], [inputs[i].length / 8, 8]) });
      assert.deepEqual(res.json.outputs[0].shape, [inputs[i].length / 8, 4]);
      assert.deepEqual(
        res.json.outputs[0].data,
        Array.from(alone.output.data as Float32Array),
        `request ${i} got exactly its own rows`,
      );
    }
    return inputs.reduce((a, x) => a + x.length / 8, 0);
  }

  test('concurrent requests are merged into fewer runs, and each client gets exactly its own rows', async () => {
    const rows = await concurrentMlp('mlp', 16, (i) => 1 + (i % 3));
    const text = await metrics();
    const executions = sample(text, 'ferry_inference_executions_total', 'mlp')!;
    assert.ok(executions < 16, `16 requests ran in ${executions} session.run calls`);
    assert.equal(sample(text, 'ferry_inference_requests_total', 'mlp'), 16);
    assert.equal(sample(text, 'ferry_inference_batch_size_sum', 'mlp'), rows, 'the batch-size histogram counts rows');
    assert.equal(sample(text, 'ferry_inference_batch_size_count', 'mlp'), executions);
    assert.ok(
      sample(text, 'ferry_inference_batch_size_bucket', 'mlp', ',le="1"')! < executions,
      'some run carried more than one row',
    );
    assert.equal(sample(text, 'ferry_inference_queue_duration_seconds_count', 'mlp'), 16);
    assert.equal(sample(text, 'ferry_inference_compute_duration_seconds_count', 'mlp'), 16);

    // The same load without batching: one run per request.
    await concurrentMlp('mlp-unbatched', 16, (i) => 1 + (i % 3));
    assert.equal(sample(await metrics(), 'ferry_inference_executions_total', 'mlp-unbatched'), 16);
  });

  test('with no queue delay, requests that arrive while the model computes are merged', async () => {
    const clients = 32;
    const next = rand(3);
    const inputs = Array.from({ length: clients }, () => Float32Array.from({ length: 512 }, next));
    const expected = await Promise.all(
      inputs.map((x) => direct.get('heavy')!.run({ input: new ort.Tensor('float32', x, [1, 512]) })),
    );
    const url = `${server.url}/v2/models/heavy/infer`;
    const responses = await Promise.all(
      inputs.map((x) =>
        post(url, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 512], data: Array.from(x) }] }),
      ),
    );
    for (const [i, res] of responses.entries()) {
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const want = expected[i].output.data as Float32Array;
      for (const [j, v] of (res.json.outputs[0].data as number[]).entries()) {
        assert.ok(
          Math.abs(v - want[j]) <= 1e-5 * (1 + Math.abs(want[j])),
          `request ${i} output ${j}: ${v} vs ${want[j]}`,
        );
      }
    }
    const text = await metrics();
    const executions = sample(text, 'ferry_inference_executions_total', 'heavy')!;
    assert.ok(executions < clients, `${clients} concurrent requests ran in ${executions} runs`);
    assert.ok(sample(text, 'ferry_inference_batch_size_bucket', 'heavy', ',le="1"')! < executions);
  });

  test('maxBatchSize caps the rows of a run; a larger request runs alone', async () => {
    await concurrentMlp('mlp-small-batches', 10, () => 3);
    await concurrentMlp('mlp-small-batches', 1, () => 20);
    const text = await metrics();
    const runs = sample(text, 'ferry_inference_batch_size_count', 'mlp-small-batches')!;
    assert.equal(
      sample(text, 'ferry_inference_batch_size_bucket', 'mlp-small-batches', ',le="8"'),
      runs - 1,
      'every run but the 20-row one had ≤ 8 rows',
    );
    assert.ok(runs >= 6 && runs < 11, `10×3 rows in batches of ≤ 8 rows (2 requests each) + 1 alone: ${runs} runs`);
  });

  test('requests of different shapes are not merged with each other', async () => {
    const widths = [2, 5, 2, 5, 2, 5, 3, 2];
    const next = rand(11);
    const inputs = widths.map((w, i) => ({ rows: 1 + (i % 2), w, x: Array.from({ length: (1 + (i % 2)) * w }, next) }));
    const responses = await Promise.all(
      inputs.map(({ rows, w, x }) =>
        post(`${server.url}/v2/models/negate/infer`, {
          inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, w], data: x }],
        }),
      ),
    );
    for (const [i, res] of responses.entries()) {
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.deepEqual(res.json.outputs[0].shape, [inputs[i].rows, inputs[i].w]);
      assert.deepEqual(
        res.json.outputs[0].data,
        inputs[i].x.map((v) => -Math.fround(v) || 0),
      );
    }
    const executions = sample(await metrics(), 'ferry_inference_executions_total', 'negate')!;
    assert.ok(
      executions >= 3 && executions < widths.length,
      `three widths → at least three runs, fewer than one per request: ${executions}`,
    );
  });

  test('an error in one request does not fail its batch mates', async () => {
    const ids = [
      [1, 2],
      [3, 4],
      [49, 0],
      [1000, 1],
      [5, 6],
      [-50, 7],
      [8, 9],
      [10, 11],
    ];
    const url = `${server.url}/v2/models/gather/infer`;
    const responses = await Promise.all(
      ids.map((row) => post(url, { inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 2], data: row }] })),
    );
    for (const [i, res] of responses.entries()) {
      if (i === 3) {
        assert.equal(res.status, 400, JSON.stringify(res.json));
        assert.match(res.json.error, /^the model rejected the input: .*out of (data )?bounds/i);
        continue;
      }
      assert.equal(res.status, 200, `request ${i}: ${JSON.stringify(res.json)}`);
      const alone = await direct
        .get('gather')!
        .run({ ids: new ort.Tensor('int64', BigInt64Array.from(ids[i].map(BigInt)), [1, 2]) });
      assert.deepEqual(res.json.outputs[0].data, Array.from(alone.vectors.data as Float32Array));
    }
    const text = await metrics();
    assert.equal(sample(text, 'ferry_inference_errors_total', 'gather', ',code="400"'), 1);
  });

  test('every datatype merges and splits: BYTES, FP16, INT64, BOOL … each client gets its own elements', async () => {
    const kinds = [
      'FP16',
      'FP32',
      'FP64',
      'INT8',
      'INT16',
      'INT32',
      'INT64',
      'UINT8',
      'UINT16',
      'UINT32',
      'UINT64',
      'BOOL',
      'BYTES',
    ];
    const elementValue = (t: string, req: number, i: number): unknown => {
      if (t === 'BOOL') return (req + i) % 2 === 0;
      if (t === 'BYTES') return `r${req}-e${i}-ü`;
      if (t === 'FP16') return 0.5 * (req + i);
      if (t === 'INT8' || t === 'INT16' || t === 'INT32' || t === 'INT64') return req * 10 - i;
      return req * 10 + i;
    };
    const requests = [1, 2, 3, 4, 2].map((n, req) =>
      kinds.map((t) => ({
        name: `x_${t}`,
        datatype: t,
        shape: [n],
        data: Array.from({ length: n }, (_, i) => elementValue(t, req, i)),
      })),
    );
    const url = `${server.url}/v2/models/echo/infer`;
    const responses = await Promise.all(requests.map((inputs) => post(url, { inputs })));
    for (const [req, res] of responses.entries()) {
      assert.equal(res.status, 200, JSON.stringify(res.json));
      for (const input of requests[req]) {
        const out = res.json.outputs.find((o: any) => o.name === input.name.replace('x_', 'y_'));
        assert.deepEqual(out.shape, input.shape);
        assert.deepEqual(out.data, input.data, `request ${req} ${input.datatype}`);
      }
    }
    assert.ok(sample(await metrics(), 'ferry_inference_executions_total', 'echo')! < requests.length);
  });

  test('a model whose merged outputs are not per row stops being batched, and still answers right', async () => {
    const inputs = [
      [1, 2],
      [10, 20],
      [100, 200],
    ];
    const url = `${server.url}/v2/models/transpose/infer`;
    const send = () =>
      Promise.all(inputs.map((x) => post(url, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: x }] })));
    const responses = await send();
    assert.deepEqual(
      responses.map((r) => [r.json.outputs?.[0].shape, r.json.outputs?.[0].data]),
      inputs.map((x) => [[2, 1], x]),
    );
    assert.ok(
      logged.some((m) =>
        /model "transpose" version "1": output "y" of a merged run has shape \[2,3\] for 3 rows.*batching is now off/.test(
          m,
        ),
      ),
      logged.join('\n'),
    );
    const before = sample(await metrics(), 'ferry_inference_executions_total', 'transpose')!;
    const again = await send();
    assert.deepEqual(
      again.map((r) => r.json.outputs?.[0].data),
      inputs,
    );
    assert.equal(
      sample(await metrics(), 'ferry_inference_executions_total', 'transpose'),
      before + 3,
      'one run per request from then on',
    );
    const config = (await (await fetch(`${server.url}/v2/models/transpose/config`)).json()) as { batching: unknown };
    assert.equal(config.batching, null, 'the config endpoint reports batching off once the server switched it off');
  });

  test('the config endpoint tells how each model is served', async () => {
    const config = async (model: string) =>
      (await fetch(`${server.url}/v2/models/${model}/versions/1/config`)).json() as Promise<{ batching: unknown }>;
    assert.deepEqual(await config('mlp-small-batches'), {
      name: 'mlp-small-batches',
      version: '1',
      sessionOptions: {},
      batching: { maxBatchSize: 8, maxQueueDelayMs: 150 },
    });
    assert.deepEqual((await config('mlp-unbatched')).batching, null);
    assert.equal((await fetch(`${server.url}/v2/models/nope/config`)).status, 404);
  });
});

describe('batching configuration', () => {
  test('a model without a dynamic batch dimension cannot ask for batching; bad settings are named', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-batching-config-'));
    try {
      await writeModelDir(dir, [{ name: 'fixed', version: '1', bytes: fixedBatchModel(), batching: true }]);
      await assert.rejects(startInferenceServer({ modelDir: dir, port: 0 }), {
        message:
          /model "fixed" version "1" asks for batching, but input "x" has a fixed first dimension \(1\), not a dynamic batch dimension/,
      });
      await writeModelDir(dir, [{ name: 'mlp', version: '1', bytes: mlp, batching: { maxBatchSize: 0 } }]);
      await assert.rejects(startInferenceServer({ modelDir: dir, port: 0 }), {
        message: /models\[0\]\.batching\.maxBatchSize must be an integer ≥ 1, got 0/,
      });
      await writeModelDir(dir, [{ name: 'mlp', version: '1', bytes: mlp, batching: { maxQueueDelay: 5 } as object }]);
      await assert.rejects(startInferenceServer({ modelDir: dir, port: 0 }), {
        message: /batching has unknown key "maxQueueDelay"/,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
