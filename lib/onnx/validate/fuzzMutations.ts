/**
 * Seeded mutations of ONNX files for fuzzing the validator. Byte-level ones (truncation, bit flips, random
 * spans) test the wire walk; structural ones parse the protobuf into a field tree, change it (extreme varints,
 * fields deleted, duplicated, inserted, moved into other messages, contents replaced) and serialise it again
 * with correct lengths, so the file still parses and the mutation reaches the checks behind the parser.
 */
import { seededUniform } from '../../seededRandom';

export type FuzzMutation =
  | 'truncate'
  | 'bit-flip'
  | 'random-span'
  | 'random-bytes'
  | 'varint'
  | 'delete-field'
  | 'duplicate-field'
  | 'insert-field'
  | 'splice-message'
  | 'replace-contents';

const BYTE_MUTATIONS: FuzzMutation[] = ['truncate', 'bit-flip', 'random-span', 'random-bytes'];
const TREE_MUTATIONS: FuzzMutation[] = [
  'varint',
  'delete-field',
  'duplicate-field',
  'insert-field',
  'splice-message',
  'replace-contents',
];

export interface FuzzCase {
  mutation: FuzzMutation;
  bytes: Uint8Array;
}

/** One mutation of `base`, chosen and applied from `seed` alone: the same seed, the same bytes. */
export function mutateModel(original: Uint8Array, seed: number): FuzzCase {
  // A plain copy: a Buffer's slice() is a view, and the byte mutations must not write through to the original.
  const base = new Uint8Array(original);
  const rand = new Rand(seed);
  const tree = parsedTree(original);
  const mutations =
    tree && tree.length > 0 ? [...BYTE_MUTATIONS, ...TREE_MUTATIONS, ...TREE_MUTATIONS] : BYTE_MUTATIONS;
  const mutation = rand.pick(mutations);
  if (BYTE_MUTATIONS.includes(mutation) || !tree) return { mutation, bytes: mutateBytes(base, mutation, rand) };
  // Up to three tree edits, so combinations (a dim changed and a node duplicated) occur too.
  const edits = 1 + rand.int(3);
  for (let i = 0; i < edits; i++) mutateTree(tree, i === 0 ? mutation : rand.pick(TREE_MUTATIONS), rand);
  return { mutation, bytes: serialise(tree) };
}

const parsed = new WeakMap<Uint8Array, WireField[] | undefined>();

/** A fresh copy of the file's field tree (parsed once per file: fuzzing mutates one file many times). */
function parsedTree(file: Uint8Array): WireField[] | undefined {
  if (!parsed.has(file)) parsed.set(file, parseMessage(file, 0));
  const tree = parsed.get(file);
  return tree && structuredClone(tree);
}

class Rand {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededUniform(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

function mutateBytes(base: Uint8Array, mutation: FuzzMutation, rand: Rand): Uint8Array {
  switch (mutation) {
    case 'truncate':
      return base.slice(0, rand.int(base.length));
    case 'bit-flip': {
      const out = base.slice();
      for (let i = 1 + rand.int(8); i > 0; i--) out[rand.int(out.length)] ^= 1 << rand.int(8);
      return out;
    }
    case 'random-span': {
      const out = base.slice();
      const at = rand.int(out.length);
      out.set(rand.bytes(Math.min(1 + rand.int(32), out.length - at)), at);
      return out;
    }
    default:
      return rand.bytes(rand.int(512));
  }
}

/** A protobuf field: varints as bigints, fixed-width and unparsed bytes as they are, submessages as trees. */
interface WireField {
  field: number;
  wireType: 0 | 1 | 2 | 5;
  varint?: bigint;
  bytes?: Uint8Array;
  children?: WireField[];
}

/** Fields of `bytes` when it parses cleanly as a message (else undefined); len-delimited fields are tried as messages. */
function parseMessage(bytes: Uint8Array, depth: number): WireField[] | undefined {
  const fields: WireField[] = [];
  let pos = 0;
  const varint = (): bigint | undefined => {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++];
      value |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return value;
    }
    return undefined;
  };
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === undefined || tag >> 3n === 0n || tag >> 3n > 536870911n) return undefined;
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (wireType === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      fields.push({ field, wireType, varint: v });
    } else if (wireType === 1 || wireType === 5) {
      const n = wireType === 1 ? 8 : 4;
      if (pos + n > bytes.length) return undefined;
      fields.push({ field, wireType, bytes: bytes.slice(pos, pos + n) });
      pos += n;
    } else if (wireType === 2) {
      const len = varint();
      if (len === undefined || pos + Number(len) > bytes.length) return undefined;
      const content = bytes.subarray(pos, pos + Number(len));
      pos += Number(len);
      const children = depth < 24 && content.length > 0 ? parseMessage(content, depth + 1) : undefined;
      fields.push(children ? { field, wireType, children } : { field, wireType, bytes: content.slice() });
    } else {
      return undefined;
    }
  }
  return fields;
}

function varintBytes(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function serialise(fields: readonly WireField[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const f of fields) {
    chunks.push(varintBytes((BigInt(f.field) << 3n) | BigInt(f.wireType)));
    if (f.wireType === 0) chunks.push(varintBytes(f.varint ?? 0n));
    else if (f.wireType === 2) {
      const body = f.children ? serialise(f.children) : (f.bytes ?? new Uint8Array(0));
      chunks.push(varintBytes(BigInt(body.length)), body);
    } else chunks.push(f.bytes ?? new Uint8Array(0));
  }
  return Buffer.concat(chunks);
}

/** Every message in the tree (the root too), each with its fields, for picking one at random. */
function messages(root: WireField[]): WireField[][] {
  const out: WireField[][] = [root];
  for (let i = 0; i < out.length; i++) {
    for (const f of out[i]) if (f.children) out.push(f.children);
  }
  return out;
}

const EXTREME_VARINTS = [
  0n,
  1n,
  2n,
  7n,
  127n,
  2n ** 31n - 1n,
  2n ** 32n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
];

function mutateTree(root: WireField[], mutation: FuzzMutation, rand: Rand): void {
  const all = messages(root);
  const message = rand.pick(all);
  const anyField = (): WireField | undefined => (message.length > 0 ? rand.pick(message) : undefined);
  switch (mutation) {
    case 'varint': {
      const varints = all.flat().filter((f) => f.wireType === 0);
      if (varints.length === 0) return;
      const f = rand.pick(varints);
      f.varint = rand.int(3) === 0 ? BigInt(rand.int(1 << 20)) : rand.pick(EXTREME_VARINTS);
      return;
    }
    case 'delete-field':
      if (message.length > 0) message.splice(rand.int(message.length), 1);
      return;
    case 'duplicate-field': {
      const f = anyField();
      if (f) message.splice(rand.int(message.length + 1), 0, structuredClone(f));
      return;
    }
    case 'insert-field': {
      const field = rand.int(4) === 0 ? 1 + rand.int(1 << 20) : 1 + rand.int(30);
      const kind = rand.int(3);
      const inserted: WireField =
        kind === 0
          ? { field, wireType: 0, varint: rand.pick(EXTREME_VARINTS) }
          : kind === 1
            ? { field, wireType: 2, bytes: rand.bytes(rand.int(16)) }
            : { field, wireType: 5, bytes: rand.bytes(4) };
      message.splice(rand.int(message.length + 1), 0, inserted);
      return;
    }
    case 'splice-message': {
      // Another message's fields copied into this one, or this one nested into itself: graphs inside tensors,
      // nodes inside attributes, subgraphs nested again.
      const donor = rand.pick(all);
      const target = message.filter((f) => f.wireType === 2);
      if (target.length === 0) return;
      rand.pick(target).children = structuredClone(donor);
      return;
    }
    default: {
      const f = anyField();
      if (f?.wireType === 2) {
        f.children = undefined;
        f.bytes = rand.bytes(rand.int(24));
      }
    }
  }
}
