/**
 * The Open Inference Protocol's binary tensor data extension. A request or response body is a JSON
 * header of `Inference-Header-Content-Length` bytes followed by raw tensor bytes: each tensor whose
 * JSON entry has `"parameters": {"binary_data_size": n}` owns the next n bytes, in the order the tensors
 * are listed. Elements are little-endian, row-major, unpadded, in their native size; BOOL is one byte
 * (0 or 1); BYTES is each element's length as a 4-byte little-endian unsigned integer, then its bytes.
 */
import * as os from 'node:os';
import type { V2Datatype } from './datatypes';
import { InvalidInputError } from './errors';

export const INFERENCE_HEADER_CONTENT_LENGTH = 'inference-header-content-length';

if (os.endianness() !== 'LE') {
  // Typed arrays use the host's byte order; every platform onnxruntime-node ships for is little-endian.
  throw new Error('the binary tensor data extension is implemented for little-endian hosts only');
}

const ELEMENT_BYTES: Record<Exclude<V2Datatype, 'BYTES'>, number> = {
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

/** The typed arrays a numeric tensor's data is held in. */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;
type NumericArrayConstructor = {
  new (length: number): NumericArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  BYTES_PER_ELEMENT: number;
};

const ARRAY_OF: Record<Exclude<V2Datatype, 'BYTES'>, NumericArrayConstructor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
  FP16: Uint16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  FP32: Float32Array,
  UINT64: BigUint64Array,
  INT64: BigInt64Array,
  FP64: Float64Array,
};

/** The binary section of a request body, consumed tensor by tensor. */
export class BinaryCursor {
  offset = 0;
  constructor(readonly bytes: Buffer) {}

  take(name: string, size: number): Buffer {
    if (this.offset + size > this.bytes.length) {
      throw new InvalidInputError(
        `input "${name}" declares binary_data_size ${size}, but only ${this.bytes.length - this.offset} bytes of binary data are left in the body`,
      );
    }
    const part = this.bytes.subarray(this.offset, this.offset + size);
    this.offset += size;
    return part;
  }

  /** After every input has taken its bytes, none may be left over. */
  checkConsumed(): void {
    const left = this.bytes.length - this.offset;
    if (left !== 0)
      throw new InvalidInputError(
        `${left} bytes of binary data after the JSON header belong to no input (check each input's binary_data_size)`,
      );
  }
}

/** Splits a body into its JSON header text and binary cursor, given the header's length as sent. */
export function splitBinaryBody(body: Buffer, headerLength: string): { json: string; binary: BinaryCursor } {
  const n = /^\d+$/.test(headerLength.trim()) ? Number(headerLength) : NaN;
  if (!Number.isSafeInteger(n) || n > body.length) {
    throw new InvalidInputError(
      `Inference-Header-Content-Length must be the JSON header's length in bytes (at most the body's ${body.length}), got "${headerLength}"`,
    );
  }
  return { json: body.toString('utf8', 0, n), binary: new BinaryCursor(body.subarray(n)) };
}

/** Typed data (or strings for BYTES) for `count` elements of `datatype` held in `bytes`. */
export function tensorDataFromBinary(
  name: string,
  datatype: V2Datatype,
  count: number,
  bytes: Buffer,
): NumericArray | string[] {
  if (datatype === 'BYTES') return stringsFromBinary(name, count, bytes);
  const size = ELEMENT_BYTES[datatype];
  if (bytes.length !== count * size) {
    throw new InvalidInputError(
      `input "${name}" has ${count} ${datatype} elements (${count * size} bytes) but binary_data_size is ${bytes.length}`,
    );
  }
  const Ctor = ARRAY_OF[datatype];
  let data: NumericArray;
  if (bytes.byteOffset % size === 0) {
    // Aligned: view the body's memory directly (the request owns it until it is answered).
    data = new Ctor(bytes.buffer, bytes.byteOffset, count);
  } else {
    data = new Ctor(count);
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  }
  if (datatype === 'BOOL') {
    for (let i = 0; i < count; i++) {
      if (bytes[i] > 1) throw new InvalidInputError(`input "${name}" (BOOL) byte ${i} must be 0 or 1, got ${bytes[i]}`);
    }
  }
  return data;
}

function stringsFromBinary(name: string, count: number, bytes: Buffer): string[] {
  // Every element takes at least its 4-byte length: a shape claiming more elements than that cannot be
  // right, and is refused before an array of its size is made.
  if (count > bytes.length / 4)
    throw new InvalidInputError(
      `input "${name}" (BYTES) has ${count} elements but its ${bytes.length} bytes of binary data cannot hold that many`,
    );
  const out: string[] = new Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length)
      throw new InvalidInputError(`input "${name}" (BYTES) binary data ends before element ${i} of ${count}`);
    const len = bytes.readUInt32LE(at);
    at += 4;
    if (at + len > bytes.length)
      throw new InvalidInputError(
        `input "${name}" (BYTES) element ${i} claims ${len} bytes, more than are left in its binary data`,
      );
    out[i] = bytes.toString('utf8', at, at + len);
    at += len;
  }
  if (at !== bytes.length)
    throw new InvalidInputError(
      `input "${name}" (BYTES) has ${bytes.length - at} bytes of binary data after its ${count} elements`,
    );
  return out;
}

/** The bytes of an output tensor for a binary response (views of the tensor's memory where possible). */
export function binaryOfTensorData(datatype: V2Datatype, data: ArrayLike<unknown>): Buffer {
  if (datatype === 'BYTES') {
    const strings = data as string[];
    const parts: Buffer[] = [];
    let total = 0;
    for (const s of strings) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(b.length, 0);
      parts.push(len, b);
      total += 4 + b.length;
    }
    return Buffer.concat(parts, total);
  }
  const typed = data as NumericArray;
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}
