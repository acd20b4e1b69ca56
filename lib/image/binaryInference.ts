/**
 * One inference request to an inference server over its Unix socket, with the Open Inference Protocol's
 * binary tensor data extension both ways (runtime/server/binaryTensors.ts): the tensors travel as their
 * raw little-endian bytes, so what the server computed arrives bit for bit, with no JSON rounding of
 * floats or 64-bit integers to blur a comparison.
 */
import * as http from 'node:http';
import type { NamedTensors } from '../optimize/agreement';
import type { Feeds, FeedTensor } from '../optimize/technique';

const V2_OF_FEED: Record<FeedTensor['type'], string> = {
  float32: 'FP32',
  float64: 'FP64',
  int64: 'INT64',
  int32: 'INT32',
  int8: 'INT8',
  bool: 'BOOL',
  uint8: 'UINT8',
};

type ArrayOf = (bytes: ArrayBuffer) => ArrayLike<number | bigint>;
/** Numeric v2 datatypes → the tensor type name the comparison reads and a view of their bytes. */
const NUMERIC_OUTPUTS: Record<string, [string, ArrayOf]> = {
  FP32: ['float32', (b) => new Float32Array(b)],
  FP64: ['float64', (b) => new Float64Array(b)],
  FP16: ['float16', (b) => float16Values(new Uint16Array(b))],
  INT64: ['int64', (b) => new BigInt64Array(b)],
  UINT64: ['uint64', (b) => new BigUint64Array(b)],
  INT32: ['int32', (b) => new Int32Array(b)],
  UINT32: ['uint32', (b) => new Uint32Array(b)],
  INT16: ['int16', (b) => new Int16Array(b)],
  UINT16: ['uint16', (b) => new Uint16Array(b)],
  INT8: ['int8', (b) => new Int8Array(b)],
  UINT8: ['uint8', (b) => new Uint8Array(b)],
  BOOL: ['bool', (b) => new Uint8Array(b)],
};

/** IEEE 754 binary16 bit patterns as numbers. */
export function float16Values(bits: Uint16Array): Float32Array {
  return Float32Array.from(bits, (h) => {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
    if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  });
}

export class InferenceRequestError extends Error {}

interface OutputHeader {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: { binary_data_size?: number };
}

function post(socketPath: string, urlPath: string, header: Buffer, payload: Buffer[], timeoutMs: number) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method: 'POST',
        path: urlPath,
        headers: {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(header.length),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new InferenceRequestError(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(Buffer.concat([header, ...payload]));
  });
}

/**
 * POSTs `feeds` to `/v2/models/<model>/infer` on the server listening at `socketPath` and returns its
 * numeric outputs by name (string outputs are left out: nothing compares them).
 */
export async function inferOverSocket(
  socketPath: string,
  model: string,
  feeds: Feeds,
  timeoutMs = 30_000,
): Promise<NamedTensors> {
  const inputs = Object.entries(feeds).map(([name, f]) => ({
    name,
    shape: f.dims,
    datatype: V2_OF_FEED[f.type],
    parameters: { binary_data_size: f.data.byteLength },
  }));
  const header = Buffer.from(JSON.stringify({ inputs, parameters: { binary_data_output: true } }));
  const payload = Object.values(feeds).map((f) => Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
  const res = await post(socketPath, `/v2/models/${encodeURIComponent(model)}/infer`, header, payload, timeoutMs);
  if (res.status !== 200) {
    throw new InferenceRequestError(`the server answered ${res.status}: ${res.body.toString('utf8').slice(0, 500)}`);
  }
  const rawLength = res.headers['inference-header-content-length'];
  const headerLength = rawLength === undefined ? res.body.length : Number(rawLength);
  if (!Number.isSafeInteger(headerLength) || headerLength < 0 || headerLength > res.body.length) {
    throw new InferenceRequestError(`the answer's Inference-Header-Content-Length is "${rawLength}"`);
  }
  const answer = JSON.parse(res.body.subarray(0, headerLength).toString('utf8')) as { outputs?: OutputHeader[] };
  const outputs: NamedTensors = {};
  let offset = headerLength;
  for (const o of answer.outputs ?? []) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) throw new InferenceRequestError(`output "${o.name}" came back without binary data`);
    if (offset + size > res.body.length) throw new InferenceRequestError(`output "${o.name}" is cut short`);
    const bytes = res.body.subarray(offset, offset + size);
    offset += size;
    const numeric = NUMERIC_OUTPUTS[o.datatype];
    if (!numeric) continue;
    const [type, view] = numeric;
    // A copy, so the view is aligned whatever the output's offset in the body.
    outputs[o.name] = { type, dims: o.shape, data: view(Uint8Array.from(bytes).buffer) };
  }
  return outputs;
}
