/**
 * The binary tensor data extension against the JSON path, on real onnxruntime sessions over HTTP:
 * the same values sent as JSON, as binary, and mixed give the same answers; outputs come back binary
 * when asked (all of them, or one by one); parameters pass through; malformed binary bodies get 400s.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { type InferenceServer, startInferenceServer } from '../../runtime/server/inferenceServer';
import { echoAllDatatypesModel, mlpModel, writeModelDir } from './onnxTestModels';
import { type BinaryInput, decodeElements, encodeElements, inferBinary, postRaw } from './v2Client';

const mlp = mlpModel({ inputDim: 4, hiddenDims: [16], outputDim: 3, seed: 9 });

/** The same values for every datatype; 64-bit ones stay within 2^53 so the JSON path can carry them too. */
const VALUES: Record<string, unknown[]> = {
  FP32: [1.5, -0.25, 3.4e38, 1e-30, 0, 7],
  FP64: [Math.PI, -1e300, 5e-324, 0.1, 2, -7],
  INT8: [-128, 127, 0, 1, -1, 5],
  INT16: [-32768, 32767, 0, 1, -1, 5],
  INT32: [-2147483648, 2147483647, 0, 1, -1, 5],
  INT64: [-9007199254740991, 9007199254740991, 0, 1, -1, 5],
  UINT8: [0, 255, 1, 2, 3, 4],
  UINT16: [0, 65535, 1, 2, 3, 4],
  UINT32: [0, 4294967295, 1, 2, 3, 4],
  UINT64: [9007199254740991, 0, 1, 2, 3, 4],
  BOOL: [true, false, true, true, false, false],
  BYTES: ['hello', '', 'ünïcödé', 'a,b', '"quoted"', 'x'.repeat(300)],
  // Exactly representable halves, so JSON (numbers) and binary (bits) carry the same values.
  FP16: [0.5, -2, 65504, 0.333251953125, 6.103515625e-5, 0],
};

function halfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (x === 0) return sign;
  assert.ok(exp > 0 && exp < 31 && (u & 0x1fff) === 0, `${x} must be a normal, exact half in this test`);
  return sign | (exp << 10) | ((u >>> 13) & 0x3ff);
}

function halfValue(bits: number): number {
  const exp = (bits >>> 10) & 0x1f;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * (bits & 0x3ff) * 2 ** -24;
  return sign * (1 + (bits & 0x3ff) / 1024) * 2 ** (exp - 15);
}

/** Binary values as the JSON path writes them (FP16 as numbers, 64-bit as numbers). */
function asJsonValues(datatype: string, decoded: unknown[]): unknown[] {
  if (datatype === 'FP16') return decoded.map((b) => halfValue(b as number));
  if (datatype === 'INT64' || datatype === 'UINT64') return decoded.map((s) => Number(s));
  return decoded;
}

function binaryInputs(types: string[]): BinaryInput[] {
  return types.map((t) => ({
    name: `x_${t}`,
    datatype: t,
    shape: [6],
    values: t === 'FP16' ? VALUES[t].map((v) => halfBits(v as number)) : VALUES[t],
  }));
}

function jsonInputs(types: string[]): object[] {
  return types.map((t) => ({ name: `x_${t}`, datatype: t, shape: [6], data: VALUES[t] }));
}

const ALL = Object.keys(VALUES);

describe('binary tensor data extension', () => {
  let dir: string;
  let server: InferenceServer;
  let echoUrl: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-binary-'));
    await writeModelDir(dir, [
      { name: 'echo', version: '1', bytes: echoAllDatatypesModel() },
      { name: 'mlp', version: '1', bytes: mlp },
    ]);
    server = await startInferenceServer({ modelDir: dir, port: 0 });
    echoUrl = `${server.url}/v2/models/echo/infer`;
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('server metadata lists the extension', async () => {
    const meta = (await (await fetch(`${server.url}/v2`)).json()) as { extensions: string[] };
    assert.ok(meta.extensions.includes('binary_tensor_data'));
  });

  test('every datatype: binary in and out, binary in JSON out, JSON in binary out all equal the JSON path', async () => {
    const jsonPath = await postRaw(echoUrl, JSON.stringify({ inputs: jsonInputs(ALL) }), {
      'content-type': 'application/json',
    });
    assert.equal(jsonPath.status, 200, JSON.stringify(jsonPath.json));
    assert.equal(jsonPath.headers.get('content-type'), 'application/json');
    const expected = new Map<string, unknown[]>(jsonPath.json.outputs.map((o: any) => [o.name, o.data]));

    const binaryBoth = await inferBinary(echoUrl, { parameters: { binary_data_output: true } }, binaryInputs(ALL));
    assert.equal(binaryBoth.status, 200, JSON.stringify(binaryBoth.json));
    assert.equal(binaryBoth.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Number(binaryBoth.headers.get('inference-header-content-length')) > 0);
    for (const t of ALL) {
      const out = binaryBoth.json.outputs.find((o: any) => o.name === `y_${t}`);
      assert.equal(out.data, undefined, `${t}: a binary output has no "data"`);
      assert.deepEqual({ datatype: out.datatype, shape: out.shape }, { datatype: t, shape: [6] });
      const bytes = binaryBoth.binary.get(`y_${t}`)!;
      assert.equal(out.parameters.binary_data_size, bytes.length);
      // Identity model: the bytes that come back are the bytes that went in.
      assert.deepEqual(bytes, encodeElements(t, binaryInputs([t])[0].values), t);
      assert.deepEqual(asJsonValues(t, decodeElements(t, bytes)), expected.get(`y_${t}`), t);
    }

    const binaryIn = await inferBinary(echoUrl, {}, binaryInputs(ALL));
    assert.equal(binaryIn.status, 200, JSON.stringify(binaryIn.json));
    assert.equal(binaryIn.binary.size, 0);
    for (const o of binaryIn.json.outputs) assert.deepEqual(o.data, expected.get(o.name), o.name);

    const binaryOut = await postRaw(
      echoUrl,
      JSON.stringify({ inputs: jsonInputs(ALL), parameters: { binary_data_output: true } }),
    );
    assert.equal(binaryOut.status, 200, JSON.stringify(binaryOut.json));
    for (const t of ALL)
      assert.deepEqual(asJsonValues(t, decodeElements(t, binaryOut.binary.get(`y_${t}`)!)), expected.get(`y_${t}`), t);

    // Half the inputs binary, half JSON, in one request.
    const half = ALL.filter((_, i) => i % 2 === 0);
    const mixed = await inferBinary(
      echoUrl,
      { inputs: jsonInputs(ALL.filter((t) => !half.includes(t))) },
      binaryInputs(half),
    );
    assert.equal(mixed.status, 200, JSON.stringify(mixed.json));
    for (const o of mixed.json.outputs) assert.deepEqual(o.data, expected.get(o.name), o.name);
  });

  test('a large FP32 tensor: binary and JSON give the same floats as session.run in-process', async () => {
    const rows = 4096;
    const input = Float32Array.from({ length: rows * 4 }, (_, i) => Math.sin(i) * 3);
    const session = await ort.InferenceSession.create(mlp);
    const direct = (await session.run({ input: new ort.Tensor('float32', input, [rows, 4]) })).output
      .data as Float32Array;
    await session.release();

    const url = `${server.url}/v2/models/mlp/infer`;
    const viaJson = await postRaw(
      url,
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4], data: Array.from(input) }] }),
    );
    const viaBinary = await inferBinary(url, { outputs: [{ name: 'output', parameters: { binary_data: true } }] }, [
      { name: 'input', datatype: 'FP32', shape: [rows, 4], values: Array.from(input) },
    ]);
    assert.equal(viaBinary.status, 200, JSON.stringify(viaBinary.json));
    const binaryOut = viaBinary.binary.get('output')!;
    assert.equal(binaryOut.length, rows * 3 * 4);
    assert.deepEqual(decodeElements('FP32', binaryOut), Array.from(direct));
    assert.deepEqual(viaJson.json.outputs[0].data, Array.from(direct));
  });

  test('named outputs choose binary one by one, and parameters pass through', async () => {
    const res = await inferBinary(
      echoUrl,
      {
        id: 'abc',
        parameters: { trace: 'x-1', priority: 2 },
        outputs: [
          { name: 'y_INT8', parameters: { note: 'json please' } },
          { name: 'y_FP32', parameters: { binary_data: true, tag: 7 } },
        ],
        inputs: jsonInputs(ALL.filter((t) => t !== 'FP32')),
      },
      binaryInputs(['FP32']),
    );
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.id, 'abc');
    assert.deepEqual(res.json.parameters, { trace: 'x-1', priority: 2 });
    assert.deepEqual(
      res.json.outputs.map((o: any) => o.name),
      ['y_INT8', 'y_FP32'],
    );
    const [int8, fp32] = res.json.outputs;
    assert.deepEqual(int8, {
      name: 'y_INT8',
      datatype: 'INT8',
      shape: [6],
      parameters: { note: 'json please' },
      data: VALUES.INT8,
    });
    assert.deepEqual(fp32, {
      name: 'y_FP32',
      datatype: 'FP32',
      shape: [6],
      parameters: { tag: 7, binary_data_size: 24 },
    });
    assert.deepEqual(
      decodeElements('FP32', res.binary.get('y_FP32')!),
      Array.from(Float32Array.from(VALUES.FP32 as number[])),
    );

    // binary_data: false on one output overrides binary_data_output for the rest.
    const some = await postRaw(
      echoUrl,
      JSON.stringify({
        inputs: jsonInputs(ALL),
        parameters: { binary_data_output: true },
        outputs: [{ name: 'y_BOOL', parameters: { binary_data: false } }, { name: 'y_BYTES' }],
      }),
    );
    assert.equal(some.status, 200, JSON.stringify(some.json));
    assert.deepEqual(some.json.parameters, undefined, 'binary_data_output is acted on, not echoed');
    assert.deepEqual(some.json.outputs[0].data, VALUES.BOOL);
    assert.deepEqual(decodeElements('BYTES', some.binary.get('y_BYTES')!), VALUES.BYTES);
  });

  test('malformed binary requests get 400 naming the problem', async () => {
    const mlpUrl = `${server.url}/v2/models/mlp/infer`;
    const header = (obj: unknown) => Buffer.from(JSON.stringify(obj));
    const fp32Input = (size: number) => ({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: size } }],
    });
    const four = encodeElements('FP32', [1, 2, 3, 4]);
    const cases: Array<[string, Buffer, Record<string, string>, string | RegExp]> = [
      [
        'header longer than body',
        header(fp32Input(16)),
        { 'inference-header-content-length': '9999' },
        /Inference-Header-Content-Length must be the JSON header's length/,
      ],
      ['header length not a number', header(fp32Input(16)), { 'inference-header-content-length': 'ten' }, /got "ten"/],
      [
        'binary without the header',
        Buffer.concat([header(fp32Input(16)), four]),
        {},
        /^malformed JSON|no Inference-Header-Content-Length/,
      ],
      [
        'size does not fit the shape',
        Buffer.concat([header(fp32Input(12)), four.subarray(0, 12)]),
        { 'inference-header-content-length': String(header(fp32Input(12)).length) },
        'input "input" has 4 FP32 elements (16 bytes) but binary_data_size is 12',
      ],
      [
        'size past the end',
        Buffer.concat([header(fp32Input(32)), four]),
        { 'inference-header-content-length': String(header(fp32Input(32)).length) },
        'input "input" declares binary_data_size 32, but only 16 bytes of binary data are left in the body',
      ],
      [
        'bytes left over',
        Buffer.concat([header(fp32Input(16)), four, Buffer.from([1, 2])]),
        { 'inference-header-content-length': String(header(fp32Input(16)).length) },
        /^2 bytes of binary data after the JSON header belong to no input/,
      ],
    ];
    const both = {
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], parameters: { binary_data_size: 16 } },
      ],
    };
    cases.push([
      'data and binary_data_size',
      Buffer.concat([header(both), four]),
      { 'inference-header-content-length': String(header(both).length) },
      'input "input" has both "data" and binary_data_size: send its elements one way',
    ]);
    const noHeaderButSize = header(fp32Input(16));
    cases.push([
      'binary_data_size in a plain JSON body',
      noHeaderButSize,
      {},
      'input "input" declares binary_data_size, but the request has no Inference-Header-Content-Length header saying where its JSON ends',
    ]);
    for (const [what, body, headers, message] of cases) {
      const res = await postRaw(mlpUrl, body, headers).catch(
        (err) => ({ status: -1, json: { error: String(err) } }) as any,
      );
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.json)}`);
      if (typeof message === 'string') assert.equal(res.json.error, message, what);
      else assert.match(res.json.error, message, what);
    }

    const withEcho = async (t: string, bytes: Buffer) => {
      const others = jsonInputs(ALL.filter((x) => x !== t));
      const h = header({
        inputs: [
          { name: `x_${t}`, datatype: t, shape: [6], parameters: { binary_data_size: bytes.length } },
          ...others,
        ],
      });
      return postRaw(echoUrl, Buffer.concat([h, bytes]), { 'inference-header-content-length': String(h.length) });
    };
    const badBool = await withEcho('BOOL', Buffer.from([1, 0, 2, 0, 0, 0]));
    assert.equal(badBool.status, 400);
    assert.equal(badBool.json.error, 'input "x_BOOL" (BOOL) byte 2 must be 0 or 1, got 2');
    const shortBytes = await withEcho('BYTES', encodeElements('BYTES', ['a', 'b', 'c', 'd', 'e']));
    assert.equal(shortBytes.status, 400);
    assert.equal(shortBytes.json.error, 'input "x_BYTES" (BYTES) binary data ends before element 5 of 6');
    const overlong = Buffer.concat([
      encodeElements('BYTES', ['a', 'b', 'c', 'd', 'e']),
      Buffer.from([200, 0, 0, 0, 65]),
    ]);
    assert.match((await withEcho('BYTES', overlong)).json.error, /element 5 claims 200 bytes/);

    const badFlag = await postRaw(
      mlpUrl,
      JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
        parameters: { binary_data_output: 'yes' },
      }),
    );
    assert.equal(badFlag.status, 400);
    assert.equal(badFlag.json.error, 'parameters.binary_data_output must be true or false, got "yes"');
  });
});
