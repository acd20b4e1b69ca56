/**
 * The ONNX protobuf schema as protobufjs reflection types, with two changes to protobufjs' stock codec:
 *
 * 1. Decoded messages are plain objects (no prototype defaults, no Long): 64-bit integers become `number`
 *    when they fit in 2^53 and `bigint` otherwise, so Slice's INT64_MAX sentinels survive a round trip.
 *    Encoding accepts number, bigint or Long.
 * 2. Fields this schema does not know are kept as raw bytes under `$unknownFields` and written back on encode,
 *    so a model from a newer ONNX release round-trips without silently losing data.
 *
 * The override is per Type object, so it does not touch other protobufjs users in the process (Temporal).
 */
import * as protobuf from 'protobufjs';
import { ONNX_PROTO_SOURCE } from './onnxProtoSource';

/** Property holding the raw wire bytes of fields the schema does not know, one chunk per field. */
export const UNKNOWN_FIELDS = '$unknownFields';

const INT64_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED_INT64_TYPES = new Set(['uint64', 'fixed64']);

interface Int64Field {
  name: string;
  repeated: boolean;
  unsigned: boolean;
}

type LongLike = { low: number; high: number };
type AnyMessage = Record<string, unknown>;

export const onnxRoot: protobuf.Root = protobuf.parse(ONNX_PROTO_SOURCE, { keepCase: true }).root;
onnxRoot.resolveAll();

function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) out.push(nested);
    if (nested instanceof protobuf.Namespace) out.push(...allTypes(nested)); // a Type is a Namespace too (nested types)
  }
  return out;
}

for (const type of allTypes(onnxRoot)) installPlainCodec(type);

export const ModelProtoType = onnxRoot.lookupType('onnx.ModelProto');
export const GraphProtoType = onnxRoot.lookupType('onnx.GraphProto');
export const NodeProtoType = onnxRoot.lookupType('onnx.NodeProto');
export const AttributeProtoType = onnxRoot.lookupType('onnx.AttributeProto');
export const TensorProtoType = onnxRoot.lookupType('onnx.TensorProto');
export const SparseTensorProtoType = onnxRoot.lookupType('onnx.SparseTensorProto');
export const ValueInfoProtoType = onnxRoot.lookupType('onnx.ValueInfoProto');
export const TypeProtoType = onnxRoot.lookupType('onnx.TypeProto');
export const TensorShapeProtoType = onnxRoot.lookupType('onnx.TensorShapeProto');
export const OperatorSetIdProtoType = onnxRoot.lookupType('onnx.OperatorSetIdProto');
export const StringStringEntryProtoType = onnxRoot.lookupType('onnx.StringStringEntryProto');
export const FunctionProtoType = onnxRoot.lookupType('onnx.FunctionProto');
export const TrainingInfoProtoType = onnxRoot.lookupType('onnx.TrainingInfoProto');

function installPlainCodec(type: protobuf.Type): void {
  type.setup(); // generate protobufjs' codec now, then wrap it (setup would otherwise replace our wrappers)
  const generatedDecode = type.decode;
  const generatedEncode = type.encode;
  const knownIds = new Set(type.fieldsArray.map((f) => f.id));
  const int64Fields: Int64Field[] = type.fieldsArray
    .filter((f) => INT64_TYPES.has(f.type))
    .map((f) => ({ name: f.name, repeated: f.repeated, unsigned: UNSIGNED_INT64_TYPES.has(f.type) }));

  // protobufjs calls nested types as `types[i].decode(reader, length, endGroupTag, depth)`.
  const decode = generatedDecode as unknown as (r: protobuf.Reader, l?: number, e?: number, n?: number) => AnyMessage;
  type.decode = function decodePlain(
    this: protobuf.Type,
    input: protobuf.Reader | Uint8Array,
    length?: number,
    endGroup?: number,
    depth?: number,
  ) {
    const reader = input instanceof protobuf.Reader ? input : protobuf.Reader.create(input);
    const start = reader.pos;
    const end = length === undefined ? reader.len : start + length;
    const decoded = decode.call(this, reader, length, endGroup, depth);
    const plain: AnyMessage = {};
    for (const key of Object.keys(decoded)) plain[key] = decoded[key];
    // Plain loops, no closures: this runs once per decoded message, and each closure costs an allocation.
    for (const f of int64Fields) {
      const v = plain[f.name];
      if (v === undefined) continue;
      if (!f.repeated) {
        plain[f.name] = int64ToJs(v, f.unsigned);
        continue;
      }
      const values = v as unknown[];
      for (let i = 0; i < values.length; i++) values[i] = int64ToJs(values[i], f.unsigned);
    }
    if (endGroup === undefined) {
      const unknown = unknownFieldChunks(reader.buf, start, end, knownIds);
      if (unknown.length > 0) plain[UNKNOWN_FIELDS] = unknown;
    }
    return plain as unknown as protobuf.Message;
  } as typeof type.decode;

  const encode = generatedEncode as unknown as (m: AnyMessage, w?: protobuf.Writer, depth?: number) => protobuf.Writer;
  type.encode = function encodePlain(
    this: protobuf.Type,
    message: AnyMessage,
    writer?: protobuf.Writer,
    depth?: number,
  ) {
    const prepared = int64Fields.length > 0 ? withInt64AsLongBits(message, int64Fields) : message;
    const w = encode.call(this, prepared, writer, depth);
    const unknown = message[UNKNOWN_FIELDS] as Uint8Array[] | undefined;
    if (unknown) for (const chunk of unknown) appendRawBytes(w, chunk);
    return w;
  } as typeof type.encode;
}

/** Long → number when exact, else bigint (two's complement for signed fields). */
function int64ToJs(v: unknown, unsigned: boolean): number | bigint {
  if (typeof v === 'number') return v;
  const { low, high } = v as LongLike;
  const hi = unsigned ? high >>> 0 : high | 0;
  const approx = hi * 4294967296 + (low >>> 0);
  if (Number.isSafeInteger(approx)) return approx;
  const bits = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
  return unsigned ? BigInt.asUintN(64, bits) : BigInt.asIntN(64, bits);
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

function toLongBits(v: unknown, unsigned: boolean): unknown {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
    if (!Number.isFinite(v)) throw new Error(`cannot encode ${v} as a 64-bit integer`);
    // Beyond 2^53 a number is already approximate; clamp so 2^63 (a rounded INT64_MAX) does not wrap to INT64_MIN.
    const big = BigInt(Math.trunc(v));
    const max = unsigned ? UINT64_MAX : -INT64_MIN - 1n;
    const min = unsigned ? 0n : INT64_MIN;
    v = big > max ? max : big < min ? min : big;
  }
  if (typeof v === 'bigint') {
    const bits = BigInt.asUintN(64, v);
    return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0 };
  }
  return v; // a Long or a decimal string: protobufjs' writer takes those as they are
}

function withInt64AsLongBits(message: AnyMessage, fields: Int64Field[]): AnyMessage {
  let copy: AnyMessage | undefined;
  for (const f of fields) {
    const v = message[f.name];
    if (v === undefined || v === null) continue;
    const needs = f.repeated
      ? (v as unknown[]).some((x) => typeof x === 'bigint' || (typeof x === 'number' && !Number.isSafeInteger(x)))
      : typeof v === 'bigint' || (typeof v === 'number' && !Number.isSafeInteger(v));
    if (!needs) continue;
    copy ??= { ...message };
    copy[f.name] = f.repeated ? (v as unknown[]).map((x) => toLongBits(x, f.unsigned)) : toLongBits(v, f.unsigned);
  }
  return copy ?? message;
}

/** Appends bytes verbatim (no length prefix). protobufjs has no public call for this; `_push` is its own primitive. */
function appendRawBytes(writer: protobuf.Writer, bytes: Uint8Array): void {
  const w = writer as unknown as {
    _push(fn: (val: Uint8Array, buf: Uint8Array, pos: number) => void, len: number, val: Uint8Array): unknown;
  };
  w._push((val, buf, pos) => buf.set(val, pos), bytes.length, bytes);
}

/** Walks the fields of one message's bytes and returns those whose number the schema does not know. */
function unknownFieldChunks(buf: Uint8Array, start: number, end: number, knownIds: Set<number>): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const cursor = new WireCursor(buf, start, end);
  while (cursor.pos < end) {
    const fieldStart = cursor.pos;
    const tag = cursor.varint();
    cursor.skip(tag % 8, 0);
    if (cursor.pos > end) throw new RangeError('field runs past the end of the message');
    if (!knownIds.has(Math.floor(tag / 8))) chunks.push(buf.subarray(fieldStart, cursor.pos));
  }
  return chunks;
}

/** Reads protobuf wire format just far enough to step over fields (a class: no per-call closures on a hot path). */
class WireCursor {
  constructor(
    private readonly buf: Uint8Array,
    public pos: number,
    private readonly end: number,
  ) {}

  varint(): number {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.end) throw new RangeError('varint runs past the end of the message');
      if (shift > 63) throw new RangeError('varint longer than 10 bytes');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * 2 ** shift; // arithmetic, not bit ops: tags and lengths may exceed 2^31
      if (b < 0x80) return result;
    }
  }

  skip(wireType: number, depth: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        return;
      case 2: {
        const length = this.varint(); // read before adding: `pos += varint()` would add to the stale pos
        this.pos += length;
        return;
      }
      case 5:
        this.pos += 4;
        return;
      case 3:
        if (depth > 100) throw new RangeError('groups nested too deeply');
        for (;;) {
          const tag = this.varint();
          if (tag % 8 === 4) return;
          this.skip(tag % 8, depth + 1);
        }
      default:
        throw new RangeError(`invalid wire type ${wireType}`);
    }
  }
}
