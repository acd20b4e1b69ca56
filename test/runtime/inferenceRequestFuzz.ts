/**
 * A generator of fuzzed Open Inference Protocol requests for the fuzz tests: a valid request (the MLP
 * or the echo model of every datatype, JSON or binary), then one to three seeded mutations of its
 * values, shapes, datatypes, binary-extension headers and sizes, body bytes, path, method, headers or
 * HTTP framing. The same seed gives the same requests in the same order.
 */

import type { Prng, RawRequest } from './httpFuzz';
import { ECHO_DATATYPES } from './onnxTestModels';
import { encodeElements } from './v2Client';

export interface FuzzTarget {
  /** The server's max batch and body limit, so mutations land just past them too. */
  maxBatch: number;
  maxBodyBytes: number;
  /** Put before every model path (e.g. `/d/<deployment>` through the gateway). */
  pathPrefix?: string;
}

const DATATYPES = Object.keys(ECHO_DATATYPES);

export interface Fuzzed {
  request: RawRequest;
  mutations: string[];
  /** The HTTP message itself is broken (framing, truncated): a close is an acceptable answer. */
  httpBroken: boolean;
}

/** Valid values of `count` elements of a datatype, as JSON and (for the binary path) as given to encodeElements. */
function valuesOf(rng: Prng, datatype: string, count: number): unknown[] {
  return Array.from({ length: count }, () => {
    switch (datatype) {
      case 'BOOL':
        return rng.chance(0.5);
      case 'BYTES':
        return rng.pick(['', 'a', 'ünï', 'x'.repeat(rng.int(0, 50))]);
      case 'FP16':
        return 0; // bits 0 = 0.0 both as a JSON number and as binary bits
      case 'FP32':
      case 'FP64':
        return rng.next() * 10 - 5;
      default:
        return rng.int(0, 100);
    }
  });
}

interface Tensor {
  name: string;
  datatype: unknown;
  shape: unknown;
  data?: unknown;
  parameters?: Record<string, unknown>;
}

/** A valid request: the MLP or the echo model (every datatype), JSON or binary. */
function validRequest(rng: Prng): { path: string; body: Record<string, unknown>; binary: Buffer[] } {
  const binary: Buffer[] = [];
  const asBinary = rng.chance(0.4);
  let inputs: Tensor[];
  let modelPath: string;
  if (rng.chance(0.5)) {
    const rows = rng.int(0, 4);
    const values = valuesOf(rng, 'FP32', rows * 4);
    inputs = [{ name: 'input', datatype: 'FP32', shape: [rows, 4], data: values }];
    modelPath = '/v2/models/mlp/infer';
  } else {
    const n = rng.int(0, 5);
    inputs = DATATYPES.map((t) => ({ name: `x_${t}`, datatype: t, shape: [n], data: valuesOf(rng, t, n) }));
    modelPath = '/v2/models/echo/versions/1/infer';
  }
  if (asBinary) {
    for (const input of inputs) {
      if (!rng.chance(0.8)) continue;
      const bytes = encodeElements(input.datatype as string, input.data as unknown[]);
      binary.push(bytes);
      input.parameters = { binary_data_size: bytes.length };
      delete input.data;
    }
  }
  const body: Record<string, unknown> = { inputs };
  if (rng.chance(0.3)) body.id = `req-${rng.int(0, 1000)}`;
  if (rng.chance(0.3)) body.parameters = { binary_data_output: rng.chance(0.5), note: 'x' };
  return { path: modelPath, body, binary };
}

const NASTY_VALUES: Array<(rng: Prng) => unknown> = [
  () => null,
  () => -1,
  () => 1e308,
  () => -0,
  () => 1.5,
  () => 2 ** 53 + 2,
  () => 'x',
  () => '',
  () => [],
  () => ({}),
  () => true,
  (rng) => 'é'.repeat(rng.int(200, 400)),
  (rng) => Array.from({ length: rng.int(1, 70) }, () => rng.int(0, 3)),
  (rng) => {
    let v: unknown = 1;
    for (let d = rng.int(10, 1500); d > 0; d--) v = rng.chance(0.5) ? [v] : { a: v };
    return v;
  },
  (rng) => rng.int(-5, 2 ** 31),
];

function nasty(rng: Prng): unknown {
  return rng.pick(NASTY_VALUES)(rng);
}

/** Every place in a JSON value where another value can go: [holder, key]. */
function slotsOf(value: unknown, out: Array<[Record<string, unknown> | unknown[], string | number]> = [], depth = 0) {
  if (depth > 6 || value === null || typeof value !== 'object') return out;
  if (Array.isArray(value)) {
    for (let i = 0; i < Math.min(value.length, 20); i++) {
      out.push([value, i]);
      slotsOf(value[i], out, depth + 1);
    }
  } else {
    for (const k of Object.keys(value)) {
      out.push([value as Record<string, unknown>, k]);
      slotsOf((value as Record<string, unknown>)[k], out, depth + 1);
    }
  }
  return out;
}

type Mutation = (rng: Prng, r: Draft, target: FuzzTarget) => void;
interface Draft {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Record<string, unknown>;
  binary: Buffer[];
  /** Set by text-level mutations: the body as bytes, replacing body + binary. */
  rawBody?: Buffer;
  headerLength?: string;
  truncateAt?: number;
  noContentLength?: boolean;
  httpBroken?: boolean;
}

const MUTATIONS: Record<string, Mutation> = {
  'replace a value': (rng, r) => {
    const slots = slotsOf(r.body);
    if (!slots.length) return;
    const [holder, key] = rng.pick(slots);
    (holder as Record<string | number, unknown>)[key] = nasty(rng);
  },
  'delete a key': (rng, r) => {
    const slots = slotsOf(r.body).filter(([h]) => !Array.isArray(h));
    if (!slots.length) return;
    const [holder, key] = rng.pick(slots);
    delete (holder as Record<string, unknown>)[key as string];
  },
  'wrong datatype': (rng, r) => {
    const inputs = r.body.inputs as Tensor[];
    if (Array.isArray(inputs) && inputs.length) rng.pick(inputs).datatype = rng.pick([...DATATYPES, 'FP8', 'fp32', '']);
  },
  'lying shape': (rng, r, target) => {
    const inputs = r.body.inputs as Tensor[];
    if (!Array.isArray(inputs) || !inputs.length) return;
    const input = rng.pick(inputs);
    input.shape = rng.pick([
      [2 ** 40, 4],
      [rng.int(0, 10), rng.int(0, 10)],
      [target.maxBatch + rng.int(1, 1000)],
      [],
      [1e308],
      Array.from({ length: rng.int(2, 100) }, () => 1),
      [rng.int(5, 50), 4],
    ]);
  },
  'extra input': (rng, r) => {
    const inputs = r.body.inputs as Tensor[];
    if (Array.isArray(inputs) && inputs.length) inputs.push({ ...rng.pick(inputs) });
  },
  'unknown output asked for': (rng, r) => {
    r.body.outputs = rng.pick([[{ name: 'nope' }], [{ name: 'output' }, { name: 'output' }], 'output', [{}], [null]]);
  },
  'deep parameters': (rng, r) => {
    let v: unknown = 1;
    for (let d = rng.int(10, 1500); d > 0; d--) v = { a: v };
    r.body.parameters = { p: v };
  },
  'lying binary_data_size': (rng, r) => {
    const inputs = (r.body.inputs as Tensor[]).filter((t) => t?.parameters?.binary_data_size !== undefined);
    if (!inputs.length) return;
    const t = rng.pick(inputs);
    const size = t.parameters!.binary_data_size as number;
    t.parameters!.binary_data_size = rng.pick([
      size + rng.int(1, 9),
      Math.max(0, size - rng.int(1, 9)),
      1e15,
      -4,
      0.5,
      '8',
    ]);
  },
  'lying Inference-Header-Content-Length': (rng, r) => {
    const json = Buffer.byteLength(JSON.stringify(r.body));
    r.headerLength = rng.pick([
      String(json + rng.int(1, 64)),
      String(Math.max(0, json - rng.int(1, 64))),
      '-1',
      '',
      ' 12 ',
      '1e3',
      '9'.repeat(rng.int(16, 300)),
      'abc',
      String(2 ** 53),
    ]);
  },
  'truncate the body': (rng, r) => {
    const full = bodyBytes(r);
    r.rawBody = full.subarray(0, rng.int(0, Math.max(0, full.length - 1)));
  },
  'random bytes in the body': (rng, r) => {
    const full = Buffer.from(bodyBytes(r));
    for (let k = rng.int(1, 8); k > 0 && full.length; k--) full[rng.int(0, full.length - 1)] = rng.int(0, 255);
    r.rawBody = full;
  },
  'body replaced': (rng, r) => {
    r.rawBody = Buffer.from(rng.pick(['null', '', '[]', '"inputs"', '{}', '0', '{"inputs":{}}', '\u0000']), 'latin1');
    if (rng.chance(0.3)) r.rawBody = rng.bytes(rng.int(1, 2000));
  },
  'oversized body': (rng, r, target) => {
    r.rawBody = Buffer.alloc(target.maxBodyBytes + rng.int(1, 4096), 0x20);
  },
  'bad path': (rng, r) => {
    r.path = rng.pick([
      '/v2/models/%/infer',
      '/v2/models/%E0%A4%A/infer',
      `/v2/models/${'n'.repeat(rng.int(256, 2000))}/infer`,
      '/v2/models/mlp/versions/%zz/infer',
      '/v2/models//infer',
      '/v2/models/mlp/versions//infer',
      '/v2/models/%00/infer',
      '/v2/models/mlp/infer/extra',
      '/v2/../v2/models/mlp/infer',
      '/v2/models/__proto__/infer',
      '/v2/models/mlp/versions/constructor/infer',
    ]);
  },
  'wrong method': (rng, r) => {
    r.method = rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
  },
  'strange headers': (rng, r) => {
    r.headers.push(
      rng.pick<[string, string]>([
        ['content-type', 'text/plain'],
        ['content-type', 'application/json; charset=latin1'],
        ['expect', '100-continue'],
        ['x-long', 'v'.repeat(rng.int(1000, 8000))],
        ['accept-encoding', 'gzip'],
      ]),
    );
  },
  'stall midway (slowloris)': (rng, r) => {
    r.httpBroken = true;
    r.truncateAt = rng.int(1, 300);
  },
  'broken framing': (rng, r) => {
    r.httpBroken = true;
    if (rng.chance(0.5)) {
      r.noContentLength = true;
      r.headers.push(['transfer-encoding', rng.pick(['chunked', 'gzip', 'chunked, chunked', 'x'])]);
    } else {
      r.headers.push(['content-length', String(rng.int(0, 100000))]);
    }
  },
};

function bodyBytes(r: Draft): Buffer {
  if (r.rawBody) return r.rawBody;
  return Buffer.concat([Buffer.from(JSON.stringify(r.body), 'utf8'), ...r.binary]);
}

export function fuzzedRequest(rng: Prng, target: FuzzTarget): Fuzzed {
  const base = validRequest(rng);
  const draft: Draft = { method: 'POST', path: base.path, headers: [], body: base.body, binary: base.binary };
  const names = Object.keys(MUTATIONS);
  const mutations: string[] = [];
  for (let k = rng.int(1, 3); k > 0; k--) {
    const name = rng.pick(names);
    mutations.push(name);
    MUTATIONS[name](rng, draft, target);
  }
  const headers = [...draft.headers];
  const headerLength =
    draft.headerLength ?? (draft.binary.length ? String(Buffer.byteLength(JSON.stringify(draft.body))) : undefined);
  if (headerLength !== undefined) headers.push(['inference-header-content-length', headerLength]);
  return {
    request: {
      method: draft.method,
      path: `${target.pathPrefix ?? ''}${draft.path}`,
      headers,
      body: bodyBytes(draft),
      truncateAt: draft.truncateAt,
      noContentLength: draft.noContentLength,
    },
    mutations,
    httpBroken: draft.httpBroken === true,
  };
}
