/**
 * What the fuzz tests share: a seeded PRNG (so a failure is reproduced by its seed), raw HTTP exchanges
 * over a socket that report exactly what came back (a status, a closed connection, or nothing in time),
 * and the fixture corpus format of the nasty cases kept next to each fuzz test (fuzzCorpus/*.json).
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** Mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Prng {
  private a: number;
  constructor(readonly seed: number) {
    this.a = seed >>> 0;
  }
  /** In [0, 1). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** The seed of a fuzz run: FUZZ_SEED when given (to replay a failure), else a fixed one. */
export function fuzzSeed(fallback: number): number {
  const raw = process.env.FUZZ_SEED;
  return raw ? Number(raw) : fallback;
}

export function fuzzIterations(fallback: number): number {
  const raw = process.env.FUZZ_ITERATIONS;
  return raw ? Number(raw) : fallback;
}

export type Endpoint = { port: number; host?: string } | { socketPath: string };

export interface RawOutcome {
  /** Status of the first response, if one came. */
  status?: number;
  /** The server closed the connection (after its response, or without one). */
  closed: boolean;
  /** Neither a response nor a close within the wait. */
  hung: boolean;
  /** What came back (latin1), the first bytes only. */
  text: string;
  ms: number;
}

/**
 * Sends `bytes` on a new connection and waits up to `waitMs` for the server to answer and close (the
 * requests carry `connection: close`) or just close. `holdOpen`: keep the connection open after writing
 * (a stalled client) instead of half-closing it.
 */
export function rawExchange(endpoint: Endpoint, bytes: Buffer, waitMs: number): Promise<RawOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket =
      'socketPath' in endpoint
        ? net.connect(endpoint.socketPath)
        : net.connect(endpoint.port, endpoint.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (closed: boolean, hung: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1', 0, Math.min(size, 4096));
      // The final response's status: interim 1xx ones (100 Continue) come before it.
      let status: number | undefined;
      for (const m of text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g)) {
        status = Number(m[1]);
        if (status >= 200) break;
      }
      resolve({ status, closed, hung, text, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false, true), waitMs);
    socket.on('data', (d: Buffer) => {
      if (size < 65536) chunks.push(d);
      size += d.length;
    });
    socket.on('close', () => finish(true, false));
    socket.on('error', () => finish(true, false));
    socket.write(bytes);
  });
}

/** A request as the fuzzers build it, turned into bytes by `toBytes`. */
export interface RawRequest {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Send only the first n bytes of the whole request (a client that stalls or dies midway). */
  truncateAt?: number;
  /** Leave out content-length (the headers decide the framing). */
  noContentLength?: boolean;
}

export function toBytes(r: RawRequest): Buffer {
  let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n`;
  for (const [k, v] of r.headers) head += `${k}: ${v}\r\n`;
  if (!r.noContentLength) head += `content-length: ${r.body.length}\r\n`;
  const all = Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), r.body]);
  return r.truncateAt === undefined ? all : all.subarray(0, Math.min(r.truncateAt, all.length));
}

/**
 * A fixture case: `raw` (the whole request, for broken HTTP) or a request built from method, path,
 * headers and body. Strings in `raw` and `body` are parts; `{"repeat": s, "times": n}` is s repeated n
 * times, so a 200 000-deep nesting fits in a line of JSON; each character is one byte (latin1), so
 * binary sections and invalid UTF-8 can be written as \u00XX escapes. `expect`: "4xx", a status, or "closed" (the
 * server may answer 4xx first, or just close).
 */
export interface CorpusCase {
  name: string;
  raw?: Part[];
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Part[];
  /** When true, the body's true length is not sent: the headers as given decide. */
  noContentLength?: boolean;
  expect: '4xx' | 'closed' | number;
  /** The case exists to exhaust memory: RSS must stay within this many MiB of where it started. */
  maxRssGrowthMiB?: number;
}
type Part = string | { repeat: string; times: number };

function expand(parts: Part[]): Buffer {
  return Buffer.from(parts.map((p) => (typeof p === 'string' ? p : p.repeat.repeat(p.times))).join(''), 'latin1');
}

/** `file`: a path from the test/ folder, e.g. runtime/fuzzCorpus/inferenceServer.json. */
export function loadCorpus(file: string): CorpusCase[] {
  return JSON.parse(readFileSync(path.join(__dirname, '..', file), 'utf8')).cases;
}

export function corpusBytes(c: CorpusCase): Buffer {
  if (c.raw) return expand(c.raw);
  const body = expand(c.body ?? []);
  let head = `${c.method ?? 'POST'} ${c.path} HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(c.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (!c.noContentLength) head += `content-length: ${body.length}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);
}

/** Why an outcome breaks the rule (a 4xx, or a close for broken HTTP; never a 5xx or a hang), or undefined. */
export function violation(outcome: RawOutcome, expect: CorpusCase['expect']): string | undefined {
  if (outcome.hung) return `no answer and no close after ${outcome.ms} ms`;
  if (outcome.status !== undefined && outcome.status >= 500) return `answered ${outcome.status}`;
  if (expect === 'closed') return outcome.closed ? undefined : 'connection left open';
  if (outcome.status === undefined) return 'connection closed without an answer';
  if (expect === '4xx') return outcome.status >= 400 && outcome.status < 500 ? undefined : `answered ${outcome.status}`;
  return outcome.status === expect ? undefined : `answered ${outcome.status}, expected ${expect}`;
}
