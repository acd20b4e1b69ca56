/**
 * Reads what the dynamic loader reads from an ELF file: its machine, its interpreter (PT_INTERP) and
 * its dynamic section's DT_NEEDED, DT_RUNPATH, DT_RPATH and DT_SONAME. Only 64-bit little-endian
 * files (x86-64 and aarch64 are both), and only the few hundred bytes of headers and strings needed:
 * a 100 MB node binary is never read whole.
 *
 * Everything is taken from the program headers, as the loader does (section headers may be stripped).
 */
import { type FileHandle, open } from 'node:fs/promises';

export const ELF_MACHINE = { x86_64: 62, aarch64: 183 } as const;

export interface ElfDynamicInfo {
  /** e_machine: 62 x86-64, 183 aarch64. */
  machine: number;
  /** e_type: 2 executable, 3 shared object (or PIE). */
  type: number;
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; absent for shared libraries. */
  interpreter?: string;
  needed: string[];
  /** DT_RUNPATH split on ':' (unexpanded: "$ORIGIN" stays as written). */
  runpath: string[];
  /** DT_RPATH split on ':'; the loader ignores it when DT_RUNPATH is present. */
  rpath: string[];
  soname?: string;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
/** No real dynamic section or string table comes near these; a larger one means a corrupt file. */
const MAX_DYNAMIC_BYTES = 1 << 20;
const MAX_STRTAB_BYTES = 16 << 20;

export class NotElfError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'NotElfError';
  }
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

async function readAt(handle: FileHandle, file: string, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  if (bytesRead !== length) throw new NotElfError(file, `truncated: wanted ${length} bytes at offset ${position}`);
  return buffer;
}

function toNumber(value: bigint, file: string, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new NotElfError(file, `${what} is out of range`);
  return Number(value);
}

/** The file offset of a virtual address, through the PT_LOAD segment that maps it. */
function fileOffsetOf(vaddr: number, loads: readonly Segment[], file: string): number {
  const segment = loads.find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  if (!segment) throw new NotElfError(file, `address 0x${vaddr.toString(16)} is in no loaded segment`);
  return vaddr - segment.vaddr + segment.offset;
}

function cString(table: Buffer, offset: number, file: string): string {
  if (offset >= table.length) throw new NotElfError(file, 'string offset past the string table');
  const end = table.indexOf(0, offset);
  return table.subarray(offset, end === -1 ? table.length : end).toString('utf8');
}

export async function readElfDynamicInfo(file: string): Promise<ElfDynamicInfo> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(64);
    const { bytesRead } = await handle.read(header, 0, 64, 0);
    if (bytesRead < 64 || header.readUInt32BE(0) !== 0x7f454c46) throw new NotElfError(file, 'not an ELF file');
    if (header[4] !== 2 || header[5] !== 1) {
      throw new NotElfError(file, 'only 64-bit little-endian ELF files are supported');
    }
    const type = header.readUInt16LE(16);
    const machine = header.readUInt16LE(18);
    const phoff = toNumber(header.readBigUInt64LE(32), file, 'e_phoff');
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    if (phentsize < 56 || phnum === 0xffff) throw new NotElfError(file, 'unsupported program header layout');

    const table = await readAt(handle, file, phoff, phentsize * phnum);
    const segments: Segment[] = [];
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      segments.push({
        type: table.readUInt32LE(at),
        offset: toNumber(table.readBigUInt64LE(at + 8), file, 'p_offset'),
        vaddr: toNumber(table.readBigUInt64LE(at + 16), file, 'p_vaddr'),
        filesz: toNumber(table.readBigUInt64LE(at + 32), file, 'p_filesz'),
      });
    }
    const info: ElfDynamicInfo = { machine, type, needed: [], runpath: [], rpath: [] };

    const interp = segments.find((s) => s.type === PT_INTERP);
    if (interp) {
      if (interp.filesz > 4096) throw new NotElfError(file, 'PT_INTERP is implausibly long');
      info.interpreter = cString(await readAt(handle, file, interp.offset, interp.filesz), 0, file);
    }

    const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
    if (!dynamic) return info; // statically linked
    if (dynamic.filesz > MAX_DYNAMIC_BYTES) throw new NotElfError(file, 'PT_DYNAMIC is implausibly large');
    const entries = await readAt(handle, file, dynamic.offset, dynamic.filesz);
    const tags: Array<[bigint, bigint]> = [];
    for (let at = 0; at + 16 <= entries.length; at += 16) {
      const tag = entries.readBigInt64LE(at);
      if (tag === DT_NULL) break;
      tags.push([tag, entries.readBigUInt64LE(at + 8)]);
    }
    const value = (wanted: bigint) => tags.find(([tag]) => tag === wanted)?.[1];
    const strtab = value(DT_STRTAB);
    const strsz = value(DT_STRSZ);
    if (strtab === undefined || strsz === undefined) throw new NotElfError(file, 'dynamic section has no string table');
    const size = toNumber(strsz, file, 'DT_STRSZ');
    if (size > MAX_STRTAB_BYTES) throw new NotElfError(file, 'dynamic string table is implausibly large');
    const loads = segments.filter((s) => s.type === PT_LOAD);
    const strings = await readAt(handle, file, fileOffsetOf(toNumber(strtab, file, 'DT_STRTAB'), loads, file), size);
    const text = (offset: bigint) => cString(strings, toNumber(offset, file, 'string offset'), file);
    const pathList = (offset: bigint) =>
      text(offset)
        .split(':')
        .filter((p) => p !== '');

    for (const [tag, val] of tags) {
      if (tag === DT_NEEDED) info.needed.push(text(val));
      else if (tag === DT_RUNPATH) info.runpath.push(...pathList(val));
      else if (tag === DT_RPATH) info.rpath.push(...pathList(val));
      else if (tag === DT_SONAME) info.soname = text(val);
    }
    return info;
  } finally {
    await handle.close();
  }
}
