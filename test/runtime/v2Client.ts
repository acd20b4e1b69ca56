/**
 * A small Open Inference Protocol client for the tests, written from the protocol text rather than from
 * the server's code: JSON requests, and the binary tensor data extension (JSON header + raw bytes, with
 * Inference-Header-Content-Length) in both directions.
 */

export interface BinaryInput {
  name: string;
  datatype: string;
  shape: number[];
  /** Encoded here with a DataView, little-endian, as the extension specifies. */
  values: unknown[];
  parameters?: Record<string, unknown>;
}

export interface InferResult {
  status: number;
  headers: Headers;
  json: any;
  /** Binary sections of the response, by output name. */
  binary: Map<string, Buffer>;
}

const SIZES: Record<string, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

/** Little-endian bytes of `values` as `datatype` (FP16 values are given as their 16 bits). */
export function encodeElements(datatype: string, values: unknown[]): Buffer {
  if (datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (const v of values) {
      const b = Buffer.from(v as string, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const size = SIZES[datatype];
  const out = Buffer.alloc(values.length * size);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const [i, v] of values.entries()) {
    const at = i * size;
    switch (datatype) {
      case 'BOOL':
        view.setUint8(at, v ? 1 : 0);
        break;
      case 'UINT8':
        view.setUint8(at, v as number);
        break;
      case 'INT8':
        view.setInt8(at, v as number);
        break;
      case 'UINT16':
      case 'FP16':
        view.setUint16(at, v as number, true);
        break;
      case 'INT16':
        view.setInt16(at, v as number, true);
        break;
      case 'UINT32':
        view.setUint32(at, v as number, true);
        break;
      case 'INT32':
        view.setInt32(at, v as number, true);
        break;
      case 'FP32':
        view.setFloat32(at, v as number, true);
        break;
      case 'FP64':
        view.setFloat64(at, v as number, true);
        break;
      case 'UINT64':
        view.setBigUint64(at, BigInt(v as number | string), true);
        break;
      case 'INT64':
        view.setBigInt64(at, BigInt(v as number | string), true);
        break;
      default:
        throw new Error(`no encoding for ${datatype}`);
    }
  }
  return out;
}

/** The elements in `bytes` as JS values (64-bit integers as decimal strings, FP16 as its 16 bits). */
export function decodeElements(datatype: string, bytes: Buffer): unknown[] {
  const out: unknown[] = [];
  if (datatype === 'BYTES') {
    for (let at = 0; at < bytes.length; ) {
      const len = bytes.readUInt32LE(at);
      out.push(bytes.toString('utf8', at + 4, at + 4 + len));
      at += 4 + len;
    }
    return out;
  }
  const size = SIZES[datatype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < bytes.length; at += size) {
    switch (datatype) {
      case 'BOOL':
        out.push(view.getUint8(at) === 1);
        break;
      case 'UINT8':
        out.push(view.getUint8(at));
        break;
      case 'INT8':
        out.push(view.getInt8(at));
        break;
      case 'UINT16':
      case 'FP16':
        out.push(view.getUint16(at, true));
        break;
      case 'INT16':
        out.push(view.getInt16(at, true));
        break;
      case 'UINT32':
        out.push(view.getUint32(at, true));
        break;
      case 'INT32':
        out.push(view.getInt32(at, true));
        break;
      case 'FP32':
        out.push(view.getFloat32(at, true));
        break;
      case 'FP64':
        out.push(view.getFloat64(at, true));
        break;
      case 'UINT64':
        out.push(view.getBigUint64(at, true).toString());
        break;
      case 'INT64':
        out.push(view.getBigInt64(at, true).toString());
        break;
    }
  }
  return out;
}

/** Posts a request whose `binaryInputs` travel as binary data after the JSON header. */
export async function inferBinary(
  url: string,
  request: { inputs?: unknown[]; outputs?: unknown[]; parameters?: Record<string, unknown>; id?: string },
  binaryInputs: BinaryInput[],
): Promise<InferResult> {
  const sections = binaryInputs.map((b) => encodeElements(b.datatype, b.values));
  const header = Buffer.from(
    JSON.stringify({
      ...request,
      inputs: [
        ...binaryInputs.map((b, i) => ({
          name: b.name,
          datatype: b.datatype,
          shape: b.shape,
          parameters: { ...b.parameters, binary_data_size: sections[i].length },
        })),
        ...(request.inputs ?? []),
      ],
    }),
  );
  return postRaw(url, Buffer.concat([header, ...sections]), {
    'inference-header-content-length': String(header.length),
  });
}

/** Posts bytes as they are and splits a binary response into its JSON and per-output sections. */
export async function postRaw(
  url: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
): Promise<InferResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const headerLength = res.headers.get('inference-header-content-length');
  const jsonEnd = headerLength === null ? bytes.length : Number(headerLength);
  const json = JSON.parse(bytes.toString('utf8', 0, jsonEnd));
  const binary = new Map<string, Buffer>();
  let at = jsonEnd;
  for (const o of json.outputs ?? []) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    binary.set(o.name, bytes.subarray(at, at + size));
    at += size;
  }
  if (at !== bytes.length) throw new Error(`response has ${bytes.length - at} bytes no output claims`);
  return { status: res.status, headers: res.headers, json, binary };
}
