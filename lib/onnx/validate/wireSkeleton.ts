/**
 * A streaming walk over a ModelProto's wire format that keeps its structure and leaves its weights where they
 * are. Large `raw_data` payloads are not read: each is recorded as a byte range of the file and replaced, in
 * the rewritten "skeleton" message, by a marker field holding the range's index. The skeleton is small
 * (graph, names, shapes, small constants) and decodes with the ordinary schema.
 *
 * The walk also enforces what protobuf decoding cannot: a bound on how deeply graphs nest (If/Loop/Scan bodies),
 * checked before anything recursive touches the model, and a bound on the skeleton's size.
 */
import { type ByteSource, WindowedReader } from './byteSource';
import { ModelValidationError } from './errors';

/** Where one tensor's raw_data bytes sit in the file. */
export interface TensorByteRange {
  offset: number;
  length: number;
}

export interface ModelSkeleton {
  /** ModelProto bytes with large raw_data payloads replaced by markers. */
  bytes: Uint8Array;
  /** The payloads left out, in file order; a marker's value is an index into this list. */
  tensorRanges: TensorByteRange[];
}

export interface SkeletonLimits {
  /** Graphs nested deeper than this (the main graph is depth 0) are refused. */
  maxSubgraphDepth: number;
  /** raw_data payloads up to this size stay in the skeleton (shape constants that analysis reads). */
  inlineRawDataBytes: number;
  /** Largest skeleton accepted: everything but the large raw_data payloads. */
  maxSkeletonBytes: number;
}

/** Field number of the marker in a rewritten TensorProto: far above any field ONNX defines. */
export const RAW_DATA_MARKER_FIELD = 1_000_000;

type Kind = 'model' | 'graph' | 'node' | 'attribute' | 'tensor' | 'sparse' | 'training' | 'function';

/** The submessages the walk descends into: those that can hold a tensor or a graph. */
const CHILDREN: Record<Kind, Readonly<Record<number, Kind>>> = {
  model: { 7: 'graph', 20: 'training', 25: 'function' },
  training: { 1: 'graph', 2: 'graph' },
  function: { 7: 'node', 11: 'attribute' },
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  node: { 5: 'attribute' },
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  sparse: { 1: 'tensor', 2: 'tensor' },
  tensor: {},
};
const TENSOR_RAW_DATA = 9;

class ChunkList {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export function encodeVarint(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

export function readModelSkeleton(source: ByteSource, limits: SkeletonLimits): ModelSkeleton {
  const reader = new WindowedReader(source);
  const tensorRanges: TensorByteRange[] = [];
  let skeletonBytes = 0;
  let pos = 0;

  const malformed = (why: string): never => {
    throw new ModelValidationError(
      'not-protobuf',
      `the file is not a readable ONNX protobuf (${why} at byte ${pos}): it may be truncated, corrupted, or not an ONNX model at all`,
    );
  };

  /** A varint as a number; values past 2^53 only need to be skipped or copied, so precision there is moot. */
  const varint = (end: number): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) malformed('a varint runs past the end of its message');
      const b = reader.byteAt(pos++);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
    }
    return malformed('a varint is longer than 10 bytes');
  };

  const keep = (out: ChunkList, chunk: Uint8Array): void => {
    skeletonBytes += chunk.length;
    if (skeletonBytes > limits.maxSkeletonBytes) {
      throw new ModelValidationError(
        'too-large',
        `the model's structure (everything but its raw_data weights) is over ${limits.maxSkeletonBytes} bytes: ` +
          'store large tensors in raw_data or external data',
      );
    }
    out.push(chunk);
  };

  const walk = (kind: Kind, end: number, graphDepth: number): Uint8Array => {
    const out = new ChunkList();
    while (pos < end) {
      const tagStart = pos;
      const tag = varint(end);
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (field === 0) malformed('a field has number 0');
      if (wireType === 0) {
        varint(end);
      } else if (wireType === 1 || wireType === 5) {
        pos += wireType === 1 ? 8 : 4;
        if (pos > end) malformed('a fixed-width field runs past the end of its message');
      } else if (wireType === 2) {
        const length = varint(end);
        const bodyStart = pos;
        if (bodyStart + length > end) malformed(`a ${length}-byte field runs past the end of its message`);
        const child = CHILDREN[kind][field];
        if (child !== undefined) {
          const depth = child === 'graph' && kind === 'attribute' ? graphDepth + 1 : graphDepth;
          if (depth > limits.maxSubgraphDepth) {
            throw new ModelValidationError(
              'subgraph-too-deep',
              `the model nests subgraphs (If/Loop/Scan bodies) more than ${limits.maxSubgraphDepth} levels deep ` +
                `(at byte ${bodyStart})`,
            );
          }
          const body = walk(child, bodyStart + length, depth);
          pos = bodyStart + length;
          keep(out, encodeVarint(tag));
          keep(out, encodeVarint(body.length));
          out.push(body);
          continue;
        }
        pos = bodyStart + length;
        if (kind === 'tensor' && field === RAW_DATA_MARKER_FIELD) continue; // the file's own: not ours to trust
        if (kind === 'tensor' && field === TENSOR_RAW_DATA && length > limits.inlineRawDataBytes) {
          tensorRanges.push({ offset: bodyStart, length });
          keep(out, encodeVarint(RAW_DATA_MARKER_FIELD * 8));
          keep(out, encodeVarint(tensorRanges.length - 1));
          continue;
        }
      } else {
        malformed(`wire type ${wireType}, which ONNX files never use`);
      }
      if (kind === 'tensor' && field === RAW_DATA_MARKER_FIELD) continue;
      keep(out, reader.copy(tagStart, pos - tagStart));
    }
    if (pos !== end) malformed('a field runs past the end of its message');
    return out.concat();
  };

  const bytes = walk('model', source.size, 0);
  return { bytes, tensorRanges };
}
