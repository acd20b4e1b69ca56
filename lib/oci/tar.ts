/**
 * Deterministic tar (ustar + pax) writer and a streaming tar reader.
 *
 * The writer exists so image layers are reproducible: entries are sorted, parent directories are
 * implied, and every header carries mtime 0, empty user/group names, uid/gid 0 unless the entry
 * names others, and a mode of 0755 (directories, executables) or 0644 unless the entry names one
 * (e.g. /tmp's 1777). Nothing is read from the source file's metadata but its size and exec bit.
 * File bodies stream from disk, never buffered whole.
 * The reader is the parsing half only; extraction (with its safety checks) is in tarExtract.ts.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Largest size the 11-digit octal field holds; bigger files get a pax `size` record. */
const MAX_OCTAL_SIZE = 0o77777777777;

/** Owner and permission bits to record instead of the defaults (root, 0755/0644). */
export interface TarEntryOwnership {
  /** Permission bits, sticky/setgid included (e.g. 0o1777); overrides `executable`. */
  mode?: number;
  uid?: number;
  gid?: number;
}

export type TarEntry = TarEntryOwnership &
  (
    | { type: 'directory'; path: string }
    | { type: 'file'; path: string; sourcePath: string; executable?: boolean }
    | { type: 'file'; path: string; bytes: Buffer; executable?: boolean }
    | { type: 'symlink'; path: string; target: string }
  );

/** Normalizes an archive path ("/app/x", "./app/x" → "app/x"); refuses "..", NUL and empty names. */
export function normalizeArchivePath(input: string): string {
  if (input.includes('\0')) throw new Error(`tar path contains NUL: ${JSON.stringify(input)}`);
  const parts = input.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error(`tar path must not contain "..": ${input}`);
  if (parts.length === 0) throw new Error(`tar path is empty: ${JSON.stringify(input)}`);
  return parts.join('/');
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Sorted entries with every missing parent directory added; duplicate paths are an error. */
export function planTarEntries(entries: readonly TarEntry[]): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const entry of entries) {
    const p = normalizeArchivePath(entry.path);
    const existing = byPath.get(p);
    if (existing && !(existing.type === 'directory' && entry.type === 'directory')) {
      throw new Error(`tar entry listed twice: ${p}`);
    }
    byPath.set(p, { ...entry, path: p });
  }
  for (const p of [...byPath.keys()]) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const existing = byPath.get(dir);
      if (existing && existing.type !== 'directory')
        throw new Error(`tar entry ${dir} is both a file and a parent of ${p}`);
      if (!existing) byPath.set(dir, { type: 'directory', path: dir });
    }
  }
  // Byte order puts every parent before its children ("a" < "a/b") and is locale-independent.
  return [...byPath.values()].sort((a, b) => compareBytes(a.path, b.path));
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  Buffer.from(value, 'utf8').copy(block, offset, 0, length);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  writeString(block, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

interface HeaderFields {
  name: string;
  mode: number;
  size: number;
  typeflag: string;
  linkname?: string;
  uid?: number;
  gid?: number;
}

function encodeHeader(h: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, h.name);
  writeOctal(block, 100, 8, h.mode);
  writeOctal(block, 108, 8, h.uid ?? 0);
  writeOctal(block, 116, 8, h.gid ?? 0);
  writeOctal(block, 124, 12, Math.min(h.size, MAX_OCTAL_SIZE));
  writeOctal(block, 136, 12, 0); // mtime
  block.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(block, 156, 1, h.typeflag);
  writeString(block, 157, 100, h.linkname ?? '');
  writeString(block, 257, 6, 'ustar\0');
  writeString(block, 263, 2, '00');
  writeOctal(block, 329, 8, 0); // devmajor
  writeOctal(block, 337, 8, 0); // devminor
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

function paxRecord(key: string, value: string): string {
  // A record is "<len> <key>=<value>\n" where <len> counts itself, so settle it by iteration.
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  while (Buffer.byteLength(`${len}${body}`) !== len) len = Buffer.byteLength(`${len}${body}`);
  return `${len}${body}`;
}

function fitsUstarField(value: string, max: number): boolean {
  return /^[\x20-\x7e]*$/.test(value) && value.length <= max;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** Header blocks for one entry: a pax header first when a name, link or size does not fit ustar. */
function headerBlocks(h: HeaderFields): Buffer[] {
  const records: string[] = [];
  if (!fitsUstarField(h.name, 100)) records.push(paxRecord('path', h.name));
  if (h.linkname !== undefined && !fitsUstarField(h.linkname, 100)) records.push(paxRecord('linkpath', h.linkname));
  if (h.size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(h.size)));
  const main = encodeHeader({
    ...h,
    name: fitsUstarField(h.name, 100) ? h.name : asciiPrefix(h.name, 100),
    linkname: h.linkname === undefined || fitsUstarField(h.linkname, 100) ? h.linkname : asciiPrefix(h.linkname, 100),
  });
  if (records.length === 0) return [main];
  const pax = Buffer.from(records.join(''), 'utf8');
  const paxName = asciiPrefix(`PaxHeaders/${path.posix.basename(h.name)}`, 100);
  return [
    encodeHeader({ name: paxName, mode: 0o644, size: pax.length, typeflag: 'x' }),
    pax,
    padding(pax.length),
    main,
  ];
}

function asciiPrefix(value: string, max: number): string {
  return value.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

function checkOwnership(entry: TarEntry): void {
  if (entry.mode !== undefined && !(Number.isInteger(entry.mode) && entry.mode >= 0 && entry.mode <= 0o7777)) {
    throw new Error(`tar entry ${entry.path} has an invalid mode ${entry.mode}`);
  }
  for (const id of [entry.uid, entry.gid]) {
    // The 8-byte octal field holds 7 digits.
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id <= 0o7777777)) {
      throw new Error(`tar entry ${entry.path} has an invalid uid/gid ${id}`);
    }
  }
}

async function* tarChunks(planned: readonly TarEntry[]): AsyncGenerator<Buffer> {
  for (const entry of planned) {
    const owner = { uid: entry.uid, gid: entry.gid };
    if (entry.type === 'directory') {
      yield* headerBlocks({ name: `${entry.path}/`, mode: entry.mode ?? 0o755, size: 0, typeflag: '5', ...owner });
    } else if (entry.type === 'symlink') {
      yield* headerBlocks({ name: entry.path, mode: 0o777, size: 0, typeflag: '2', linkname: entry.target, ...owner });
    } else if ('bytes' in entry) {
      const mode = entry.mode ?? (entry.executable ? 0o755 : 0o644);
      yield* headerBlocks({ name: entry.path, mode, size: entry.bytes.length, typeflag: '0', ...owner });
      yield entry.bytes;
      yield padding(entry.bytes.length);
    } else {
      const info = await stat(entry.sourcePath);
      if (!info.isFile()) throw new Error(`tar source is not a regular file: ${entry.sourcePath}`);
      const executable = entry.executable ?? (info.mode & 0o111) !== 0;
      const mode = entry.mode ?? (executable ? 0o755 : 0o644);
      yield* headerBlocks({ name: entry.path, mode, size: info.size, typeflag: '0', ...owner });
      let written = 0;
      for await (const chunk of createReadStream(entry.sourcePath, { highWaterMark: 1 << 20 })) {
        written += (chunk as Buffer).length;
        if (written > info.size) break;
        yield chunk as Buffer;
      }
      // The header already promised info.size bytes; a file that changed meanwhile would corrupt the archive.
      if (written !== info.size) throw new Error(`${entry.sourcePath} changed size while being archived`);
      yield padding(info.size);
    }
  }
  yield ZERO_BLOCK;
  yield ZERO_BLOCK;
}

/**
 * A deterministic tar stream of `entries` (order of the input does not matter). Bad names throw
 * here, at once; a source file that vanishes or changes size errors the stream.
 */
export function createTarStream(entries: readonly TarEntry[]): Readable {
  for (const entry of entries) checkOwnership(entry);
  return Readable.from(tarChunks(planTarEntries(entries)), { objectMode: false });
}

// ---------------------------------------------------------------------------------------------
// Reader

export type TarEntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarReadEntry {
  /** The name exactly as archived (after pax/GNU long-name records); NOT yet checked for safety. */
  path: string;
  kind: TarEntryKind;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkTarget: string;
  /** The body; read it fully or not at all (the reader skips whatever is left). */
  content: AsyncIterable<Buffer>;
}

/** Pulls exact byte counts out of a chunked stream without concatenating large bodies. */
class ByteReader {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private readonly iterator: AsyncIterator<Buffer | Uint8Array>;

  constructor(source: AsyncIterable<Buffer | Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    return true;
  }

  /** Exactly n bytes, or null at a clean end of input; throws if the input stops partway. */
  async readExact(n: number): Promise<Buffer | null> {
    while (this.buffered.length < n) {
      if (!(await this.pull())) {
        if (this.buffered.length === 0) return null;
        throw new Error('tar archive is truncated');
      }
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Up to `max` (> 0) bytes, whatever is at hand; throws at end of input. */
  async readSome(max: number): Promise<Buffer> {
    if (this.buffered.length === 0 && !(await this.pull())) throw new Error('tar archive is truncated');
    const take = Math.min(max, this.buffered.length);
    const out = this.buffered.subarray(0, take);
    this.buffered = this.buffered.subarray(take);
    return out;
  }

  /** Reads to the end of input (archives may carry padding after their end marker). */
  async drain(): Promise<void> {
    this.buffered = Buffer.alloc(0);
    while (await this.pull()) this.buffered = Buffer.alloc(0);
  }

  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) left -= (await this.readSome(left)).length;
  }
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

function readNumber(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    // GNU base-256 encoding for values too large for octal.
    let value = field[0]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = readString(block, offset, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar header has a malformed number field: "${text}"`);
  return parseInt(text, 8);
}

function verifyChecksum(block: Buffer): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (sum !== readNumber(block, 148, 8)) throw new Error('tar header checksum mismatch (corrupt archive)');
}

function parsePax(body: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    const len = Number(body.subarray(pos, space).toString('ascii'));
    if (space === -1 || !Number.isInteger(len) || len <= 0 || pos + len > body.length) {
      throw new Error('tar pax header is malformed');
    }
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return records;
}

const KIND_BY_TYPEFLAG: Record<string, TarEntryKind> = {
  '0': 'file',
  '': 'file',
  '7': 'file',
  '5': 'directory',
  '2': 'symlink',
  '1': 'hardlink',
};

/** Parses a tar stream entry by entry. Bodies are streamed; metadata entries (pax, GNU) are folded in. */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarReadEntry> {
  const reader = new ByteReader(source);
  let pending: { path?: string; linkTarget?: string; size?: number } = {};
  for (;;) {
    const block = await reader.readExact(BLOCK);
    if (block === null) return;
    if (block.equals(ZERO_BLOCK)) {
      // End of archive. Consume the rest so a digesting stream upstream sees every byte.
      await reader.drain();
      return;
    }
    verifyChecksum(block);
    const typeflag = readString(block, 156, 1);
    let size = readNumber(block, 124, 12);
    const isUstar = readString(block, 257, 6).startsWith('ustar');
    const prefix = isUstar ? readString(block, 345, 155) : '';
    const name = readString(block, 0, 100);

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > 1 << 20) throw new Error('tar metadata entry is implausibly large');
      const body = (await reader.readExact(size + padding(size).length)) ?? Buffer.alloc(0);
      const data = body.subarray(0, size);
      if (typeflag === 'x') {
        const pax = parsePax(data);
        if (pax.has('path')) pending.path = pax.get('path');
        if (pax.has('linkpath')) pending.linkTarget = pax.get('linkpath');
        if (pax.has('size')) pending.size = Number(pax.get('size'));
      } else if (typeflag === 'L') {
        pending.path = readString(data, 0, data.length);
      } else if (typeflag === 'K') {
        pending.linkTarget = readString(data, 0, data.length);
      } // 'g' (global pax) carries nothing Ferry uses.
      continue;
    }

    if (pending.size !== undefined) size = pending.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('tar entry has an invalid size');
    const kind = KIND_BY_TYPEFLAG[typeflag] ?? 'other';
    // Bytes of this body not yet handed out; whatever the consumer leaves is skipped below.
    let remaining = size;
    const content = (async function* () {
      while (remaining > 0) {
        const chunk = await reader.readSome(remaining);
        remaining -= chunk.length;
        yield chunk;
      }
    })();
    yield {
      path: pending.path ?? (prefix ? `${prefix}/${name}` : name),
      kind,
      typeflag,
      mode: readNumber(block, 100, 8),
      uid: readNumber(block, 108, 8),
      gid: readNumber(block, 116, 8),
      size,
      linkTarget: pending.linkTarget ?? readString(block, 157, 100),
      content,
    };
    pending = {};
    await reader.skip(remaining);
    await reader.skip(padding(size).length);
  }
}
