/**
 * The inference server against real onnxruntime sessions over real HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { type InferenceServer, startInferenceServer } from '../../runtime/server/inferenceServer';
import { echoAllDatatypesModel, mlpModel, writeModelDir } from './onnxTestModels';

const mlpV1 = mlpModel({ inputDim: 4, hiddenDims: [8], outputDim: 3, seed: 1 });
const mlpV2 = mlpModel({ inputDim: 4, hiddenDims: [16, 8], outputDim: 3, seed: 2 });

async function postJson(url: string, body: unknown): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), text };
}

async function getJson(url: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json() };
}

function randomInput(batch: number, dim: number, seed: number): Float32Array {
  let x = seed;
  return Float32Array.from({ length: batch * dim }, () => {
    x = (x * 16807) % 2147483647;
    return (x / 2147483647) * 2 - 1;
  });
}

describe('inference server', () => {
  let dir: string;
  let server: InferenceServer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-server-'));
    await writeModelDir(dir, [
      { name: 'mlp', version: '1', bytes: mlpV1 },
      { name: 'mlp', version: '2', bytes: mlpV2 },
      { name: 'echo', version: '1', bytes: echoAllDatatypesModel() },
    ]);
    server = await startInferenceServer({ modelDir: dir, port: 0 });
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('health, server metadata and model metadata', async () => {
    assert.equal((await fetch(`${server.url}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
    const meta = await getJson(`${server.url}/v2`);
    assert.equal(meta.json.name, 'ferry');
    assert.equal(typeof meta.json.version, 'string');
    assert.ok(Array.isArray(meta.json.extensions));

    const model = await getJson(`${server.url}/v2/models/mlp`);
    assert.equal(model.status, 200);
    assert.deepEqual(model.json, {
      name: 'mlp',
      versions: ['1', '2'],
      platform: 'onnxruntime',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 3] }],
    });
    assert.equal((await getJson(`${server.url}/v2/models/mlp/versions/1`)).json.name, 'mlp');
    const ready = await getJson(`${server.url}/v2/models/mlp/ready`);
    assert.deepEqual(ready, { status: 200, json: { name: 'mlp', version: '2', ready: true } });
    assert.equal((await fetch(`${server.url}/v2/models/mlp/versions/1/ready`)).status, 200);
  });

  test('infer returns exactly what onnxruntime computes in-process, per version', async () => {
    for (const [version, bytes] of [
      ['1', mlpV1],
      ['2', mlpV2],
    ] as const) {
      const session = await ort.InferenceSession.create(bytes);
      const input = randomInput(3, 4, 7);
      const direct = await session.run({ input: new ort.Tensor('float32', input, [3, 4]) });
      await session.release();

      const res = await postJson(`${server.url}/v2/models/mlp/versions/${version}/infer`, {
        id: `req-${version}`,
        inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: Array.from(input) }],
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.model_name, 'mlp');
      assert.equal(res.json.model_version, version);
      assert.equal(res.json.id, `req-${version}`);
      assert.equal(res.json.outputs.length, 1);
      const out = res.json.outputs[0];
      assert.deepEqual(
        { name: out.name, datatype: out.datatype, shape: out.shape },
        { name: 'output', datatype: 'FP32', shape: [3, 3] },
      );
      assert.deepEqual(out.data, Array.from(direct.output.data as Float32Array));
    }
  });

  test('unversioned infer uses the latest version and accepts nested data', async () => {
    const input = randomInput(2, 4, 11);
    const nested = [Array.from(input.subarray(0, 4)), Array.from(input.subarray(4))];
    const flat = await postJson(`${server.url}/v2/models/mlp/versions/2/infer`, {
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: Array.from(input) }],
    });
    const latest = await postJson(`${server.url}/v2/models/mlp/infer`, {
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: nested }],
      outputs: [{ name: 'output' }],
    });
    assert.equal(latest.status, 200, latest.text);
    assert.equal(latest.json.model_version, '2');
    assert.equal(typeof latest.json.id, 'string', 'a request without an id gets one');
    assert.deepEqual(latest.json.outputs, flat.json.outputs);
  });

  test('every protocol datatype round-trips through onnxruntime', async () => {
    const values: Record<string, unknown[]> = {
      FP16: [0.5, -2, 65504, 0.0001, 1 / 3, 0],
      FP32: [1.5, -0.25, 3.4e38, 1e-30, 0, 7],
      FP64: [Math.PI, -1e300, 5e-324, 0.1, 2, -7],
      INT8: [-128, 127, 0, 1, -1, 5],
      INT16: [-32768, 32767, 0, 1, -1, 5],
      INT32: [-2147483648, 2147483647, 0, 1, -1, 5],
      INT64: ['-9223372036854775808', '9223372036854775807', 9007199254740991, 0, -1, 5],
      UINT8: [0, 255, 1, 2, 3, 4],
      UINT16: [0, 65535, 1, 2, 3, 4],
      UINT32: [0, 4294967295, 1, 2, 3, 4],
      UINT64: ['18446744073709551615', 0, 1, 2, 3, 4],
      BOOL: [true, false, true, true, false, false],
      BYTES: ['hello', '', 'ünïcödé', 'a,b', '"quoted"', 'x'],
    };
    const res = await postJson(`${server.url}/v2/models/echo/infer`, {
      inputs: Object.entries(values).map(([t, data]) => ({ name: `x_${t}`, shape: [6], datatype: t, data })),
    });
    assert.equal(res.status, 200, res.text);
    const byName = new Map<string, any>(res.json.outputs.map((o: any) => [o.name, o]));
    for (const [t, data] of Object.entries(values)) {
      const out = byName.get(`y_${t}`);
      assert.equal(out.datatype, t);
      assert.deepEqual(out.shape, [6]);
      if (t === 'FP16') {
        // Nearest half floats: 0.0001 → 0.00010001659393310547, 1/3 → 0.333251953125.
        assert.deepEqual(out.data, [0.5, -2, 65504, 0.00010001659393310547, 0.333251953125, 0]);
      } else if (t === 'FP32') {
        assert.deepEqual(out.data, Array.from(Float32Array.from(data as number[])));
      } else if (t === 'INT64' || t === 'UINT64') {
      } else {
        assert.deepEqual(out.data, data, t);
      }
    }
    assert.match(
      res.text,
      /"name":"y_INT64","datatype":"INT64","shape":\[6\],"data":\[-9223372036854775808,9223372036854775807,9007199254740991,0,-1,5\]/,
    );
    assert.match(
      res.text,
      /"name":"y_UINT64","datatype":"UINT64","shape":\[6\],"data":\[18446744073709551615,0,1,2,3,4\]/,
    );
  });

  test('bad requests get 4xx naming the problem', async () => {
    const infer = `${server.url}/v2/models/mlp/infer`;
    const cases: Array<[string, unknown, number, string | RegExp]> = [
      [
        'wrong shape',
        { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] },
        400,
        'input "input" expects shape [-1,4], got [1,3]',
      ],
      [
        'wrong datatype',
        { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: [1, 2, 3, 4] }] },
        400,
        'input "input" expects datatype FP32, got FP64',
      ],
      [
        'data too short',
        { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
        400,
        'input "input" has shape [2,4] (8 elements) but its data has 4 elements',
      ],
      [
        'unknown input',
        { inputs: [{ name: 'pixels', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
        400,
        'model "mlp" has no input "pixels" (inputs: input)',
      ],
      [
        'non-number data',
        { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 'two', 3, 4] }] },
        400,
        'input "input" (FP32) data[1] must be a number, got "two"',
      ],
      [
        'unknown output',
        {
          inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
          outputs: [{ name: 'logits' }],
        },
        400,
        'model "mlp" has no output "logits" (outputs: output)',
      ],
      ['no inputs', { inputs: [] }, 400, 'request body must have a non-empty "inputs" array'],
      ['malformed JSON', '{"inputs": [', 400, /^malformed JSON in request body: /],
      [
        'input given twice',
        {
          inputs: [
            { name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] },
            { name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] },
          ],
        },
        400,
        'input "input" is given twice',
      ],
      [
        'output asked twice',
        {
          inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
          outputs: [{ name: 'output' }, { name: 'output' }],
        },
        400,
        'output "output" is asked for twice',
      ],
      [
        'unknown datatype',
        { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FLOAT', data: [1, 2, 3, 4] }] },
        400,
        'input "input" has unknown datatype "FLOAT"',
      ],
      [
        'parameters not an object',
        { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], parameters: [1] },
        400,
        '"parameters" must be an object',
      ],
      [
        'negative dimension',
        { inputs: [{ name: 'input', shape: [-1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
        400,
        'input "input" must have a "shape" array of non-negative integers, got [-1,4]',
      ],
    ];
    for (const [what, body, status, message] of cases) {
      const res = await postJson(infer, body);
      assert.equal(res.status, status, `${what}: ${res.text}`);
      if (typeof message === 'string') assert.equal(res.json.error, message, what);
      else assert.match(res.json.error, message, what);
    }
    const intRange = await postJson(`${server.url}/v2/models/echo/infer`, {
      inputs: [{ name: 'x_INT8', shape: [1], datatype: 'INT8', data: [300] }],
    });
    assert.equal(intRange.status, 400);
    assert.equal(intRange.json.error, 'input "x_INT8" (INT8) data[0] must be an integer in [-128, 127], got 300');

    const unknownModel = await postJson(`${server.url}/v2/models/resnet/infer`, { inputs: [] });
    assert.equal(unknownModel.status, 404);
    assert.match(unknownModel.json.error, /unknown model "resnet"/);
    const inferUnknownVersion = await postJson(`${server.url}/v2/models/mlp/versions/9/infer`, {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    });
    assert.equal(inferUnknownVersion.status, 404);
    assert.equal(inferUnknownVersion.json.error, 'model "mlp" has no version "9" (versions: 1, 2)');
    const unknownVersion = await getJson(`${server.url}/v2/models/mlp/versions/9`);
    assert.equal(unknownVersion.status, 404);
    assert.equal(unknownVersion.json.error, 'model "mlp" has no version "9" (versions: 1, 2)');
    assert.equal((await getJson(`${server.url}/v2/models/resnet/ready`)).status, 404);
    assert.equal((await getJson(`${server.url}/v2/nothing-here`)).status, 404);
    assert.equal((await fetch(infer)).status, 405);
  });
});

describe('inference server metrics', () => {
  test('/metrics counts requests, errors by code, and latency in a histogram', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-metrics-'));
    await writeModelDir(dir, [{ name: 'mlp', version: '1', bytes: mlpV1 }]);
    const server = await startInferenceServer({ modelDir: dir, port: 0 });
    try {
      const good = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
      const bad = { inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] };
      for (let i = 0; i < 5; i++) assert.equal((await postJson(`${server.url}/v2/models/mlp/infer`, good)).status, 200);
      for (let i = 0; i < 2; i++) assert.equal((await postJson(`${server.url}/v2/models/mlp/infer`, bad)).status, 400);
      assert.equal((await postJson(`${server.url}/v2/models/nope/infer`, good)).status, 404);

      const res = await fetch(`${server.url}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /^ferry_inference_requests_total\{model="mlp",version="1"\} 7$/m);
      assert.match(text, /^ferry_inference_errors_total\{model="mlp",version="1",code="400"\} 2$/m);
      assert.match(text, /^ferry_inference_errors_total\{model="",version="",code="404"\} 1$/m);
      assert.match(text, /^# TYPE ferry_inference_request_duration_seconds histogram$/m);
      assert.match(text, /^ferry_inference_request_duration_seconds_count\{model="mlp",version="1"\} 7$/m);
      assert.match(
        text,
        /^ferry_inference_request_duration_seconds_bucket\{model="mlp",version="1",le="0.0001"\} \d+$/m,
      );
      assert.match(text, /^ferry_inference_request_duration_seconds_bucket\{model="mlp",version="1",le="\+Inf"\} 7$/m);

      // Queue and compute time for the 5 that reached the model; one run each (no batching configured).
      assert.match(text, /^# TYPE ferry_inference_queue_duration_seconds histogram$/m);
      assert.match(text, /^ferry_inference_queue_duration_seconds_count\{model="mlp",version="1"\} 5$/m);
      assert.match(
        text,
        /^ferry_inference_queue_duration_seconds_bucket\{model="mlp",version="1",le="0.00001"\} \d+$/m,
      );
      assert.match(text, /^ferry_inference_compute_duration_seconds_count\{model="mlp",version="1"\} 5$/m);
      assert.match(text, /^ferry_inference_executions_total\{model="mlp",version="1"\} 5$/m);
      assert.match(text, /^ferry_inference_batch_size_bucket\{model="mlp",version="1",le="1"\} 5$/m);
      assert.match(text, /^ferry_inference_batch_size_sum\{model="mlp",version="1"\} 5$/m);
      // Nothing in flight now; one cold start (the model load), with its duration.
      assert.match(text, /^# TYPE ferry_inference_in_flight gauge$/m);
      assert.match(text, /^ferry_inference_in_flight\{model="mlp",version="1"\} 0$/m);
      assert.doesNotMatch(text, /^ferry_inference_in_flight\{model=""/m);
      assert.match(text, /^ferry_inference_cold_starts_total\{model="mlp",version="1"\} 1$/m);
      assert.match(text, /^ferry_inference_cold_start_duration_seconds_count\{model="mlp",version="1"\} 1$/m);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
