/**
 * Fuzzing the gateway proxy's own HTTP/1.1 parsing (lib/gateway/proxy.ts, responseHead.ts) from the
 * replica's side: seeded random and malformed responses (status lines, header lines, lying or
 * conflicting content-lengths, chunked framing, 1xx, early closes, bytes split at random) from a raw
 * upstream on a Unix socket. Every client request ends (the replica's answer, a 502, or a cut connection
 * once a head was forwarded), never a hang or a crash, each exchange settles once, and afterwards the
 * same pool still forwards a good response. parseResponseHead alone: any text either parses into a sane
 * head or throws an Error. Replay a failure with FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { proxyToReplica, ReplicaClient } from '../../lib/gateway/proxy';
import { HOP_BY_HOP, parseResponseHead } from '../../lib/gateway/responseHead';
import { fuzzIterations, fuzzSeed, Prng, rawExchange } from '../runtime/httpFuzz';

const WAIT_MS = 5000;

/** A response as the fuzzed replica sends it: pieces written with a pause between, then maybe a close. */
interface Scripted {
  pieces: Buffer[];
  /** Close right after the last piece (a close-delimited body, or a replica that just stops). */
  closeAfter: boolean;
  /**
   * The response may be incomplete as framed (truncated, lying length, garbage): the replica closes a
   * moment later, as a crashed one would. A stall without end is the client-side idle timeout's job
   * (serverLimits.ts), not the proxy's.
   */
  mayBeIncomplete: boolean;
  what: string[];
}

const STATUS_LINES = [
  'HTTP/1.1 200 OK',
  'HTTP/1.1 404 Not Found',
  'HTTP/1.0 200 OK',
  'HTTP/1.1 204 No Content',
  'HTTP/1.1 304 Not Modified',
  'HTTP/1.1 999 Odd',
  'HTTP/1.1 200',
  'HTTP/1.1 2000 OK',
  'HTTP/1.1 20 OK',
  'HTTP/2 200 OK',
  'HTTP/1.1 099 Low',
  'HTTP/1.1 abc OK',
  'http/1.1 200 OK',
  'HTTP/1.1  200 OK',
  '',
  'FOO',
];

function headerLines(rng: Prng, bodyLength: number): { lines: string[]; framing: string } {
  const lines: string[] = [];
  const framing = rng.pick(['length', 'length', 'chunked', 'none', 'lying-length', 'both', 'two-lengths']);
  if (framing === 'length') lines.push(`content-length: ${bodyLength}`);
  if (framing === 'lying-length')
    lines.push(
      `content-length: ${rng.pick([bodyLength + rng.int(1, 50), Math.max(0, bodyLength - rng.int(1, 50)), -1, '1e3', '', ' 5', '999999999999999999', '0x10'])}`,
    );
  if (framing === 'chunked' || framing === 'both')
    lines.push(
      rng.pick(['transfer-encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'transfer-encoding: chunked, gzip']),
    );
  if (framing === 'both') lines.push(`content-length: ${bodyLength}`);
  if (framing === 'two-lengths') lines.push(`content-length: ${bodyLength}`, `content-length: ${bodyLength + 1}`);
  for (let k = rng.int(0, 4); k > 0; k--) {
    lines.push(
      rng.pick([
        'content-type: application/json',
        'x-ok: yes',
        'connection: close',
        'connection: keep-alive, x-secret',
        'x-secret: hop',
        'keep-alive: timeout=5',
        'no colon here',
        ': empty name',
        'bad name: x',
        `x-long: ${'v'.repeat(rng.int(100, 70000))}`,
        'x-ctl: a\u0001b',
        'x-high: ÿé',
        'x-ferry-replica: spoofed',
        'trailer: x-t',
        'upgrade: websocket',
        'content-length:',
      ]),
    );
  }
  return { lines, framing };
}

function chunkedBody(rng: Prng, body: Buffer, what: string[]): string {
  let out = '';
  let at = 0;
  const text = body.toString('latin1');
  while (at < text.length) {
    const n = rng.int(1, Math.max(1, text.length - at));
    out += `${n.toString(16)}${rng.chance(0.1) ? ';ext=1' : ''}\r\n${text.slice(at, at + n)}\r\n`;
    at += n;
  }
  if (rng.chance(0.2)) {
    out += rng.pick(['zz\r\n', 'ffffffffffff\r\n', '-1\r\n', `${'1'.repeat(70000)}`, '5\r\nab', '3\r\nabcXX']);
    what.push('bad chunk');
  }
  out += rng.chance(0.15) ? '0\r\nx-trailer: 1\r\n\r\n' : '0\r\n\r\n';
  return out;
}

function scriptedResponse(rng: Prng): Scripted {
  const what: string[] = [];
  const body = Buffer.from('{"ok":true}'.repeat(rng.int(0, rng.chance(0.2) ? 8000 : 5)), 'latin1');
  let text = '';
  if (rng.chance(0.15)) {
    text += rng.pick(['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n']);
    what.push('interim');
  }
  const status = rng.chance(0.7) ? 'HTTP/1.1 200 OK' : rng.pick(STATUS_LINES);
  const { lines, framing } = headerLines(rng, body.length);
  what.push(JSON.stringify(status), framing, ...lines.map((l) => l.slice(0, 40)));
  text += `${status}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
  text += framing === 'chunked' || framing === 'both' ? chunkedBody(rng, body, what) : body.toString('latin1');
  if (rng.chance(0.1)) {
    text += 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi'; // bytes nobody asked for
    what.push('extra response');
  }
  let all = Buffer.from(text, 'latin1');
  if (rng.chance(0.15)) {
    all = all.subarray(0, rng.int(0, all.length));
    what.push('truncated');
  }
  if (rng.chance(0.05)) {
    all = Buffer.concat([all.subarray(0, rng.int(0, all.length)), rng.bytes(rng.int(1, 100))]);
    what.push('random bytes');
  }
  // Split at random points, as TCP may.
  const pieces: Buffer[] = [];
  let at = 0;
  while (at < all.length) {
    const n = rng.chance(0.5) ? all.length - at : rng.int(1, all.length - at);
    pieces.push(all.subarray(at, at + n));
    at += n;
  }
  const closeAfter = rng.chance(0.2);
  if (closeAfter) what.push('close');
  const mayBeIncomplete =
    status !== 'HTTP/1.1 200 OK' ||
    !['length', 'chunked'].includes(framing) ||
    lines.some((l) => /^transfer-encoding: .*chunked, gzip$/i.test(l)) ||
    what.some((w) => ['truncated', 'random bytes', 'bad chunk'].includes(w));
  return { pieces, closeAfter, mayBeIncomplete, what };
}

/** The replica: answers each request with the script its `x-case` header names. */
async function scriptedUpstream(socketPath: string, scripts: Map<number, Scripted>) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', async (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = text.slice(0, end);
      text = text.slice(end + 4);
      const script = scripts.get(Number(/\r\nx-case: (\d+)/i.exec(head)?.[1]));
      if (!script) return void socket.end('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ngood');
      for (const piece of script.pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        await new Promise((r) => setImmediate(r));
      }
      if (script.closeAfter) socket.end();
      else if (script.mayBeIncomplete) setTimeout(() => socket.destroy(), 100);
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('gateway proxy response fuzzing', () => {
  let dir: string;
  const scripts = new Map<number, Scripted>();
  let upstream: { close(): Promise<void> };
  let client: ReplicaClient;
  let frontServer: http.Server;
  let frontPort: number;
  const settled = new Map<number, number>();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-proxyfuzz-'));
    const socketPath = path.join(dir, 'replica.sock');
    upstream = await scriptedUpstream(socketPath, scripts);
    client = new ReplicaClient();
    frontServer = http.createServer((req, res) => {
      const n = Number(req.headers['x-case']);
      proxyToReplica(client, req, res, { socketPath, port: 0 }, req.url!, ['x-ferry-replica', '1'], () =>
        settled.set(n, (settled.get(n) ?? 0) + 1),
      );
    });
    await new Promise<void>((resolve) => frontServer.listen(0, '127.0.0.1', resolve));
    frontPort = (frontServer.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => {
      frontServer.close(() => resolve());
      frontServer.closeAllConnections();
    });
    client.destroy();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('parseResponseHead: random heads parse into a sane head or throw an Error', () => {
    const seed = fuzzSeed(0x4ead);
    const rng = new Prng(seed);
    const extra = ['x-ferry-replica', '7'];
    for (let i = 0; i < fuzzIterations(5000); i++) {
      const { lines } = headerLines(rng, rng.int(0, 100));
      let text = `${rng.pick(STATUS_LINES)}\r\n${lines.join('\r\n')}`;
      if (rng.chance(0.3)) text = text.slice(0, rng.int(0, text.length));
      if (rng.chance(0.1)) text += rng.bytes(rng.int(1, 40)).toString('latin1');
      let head: ReturnType<typeof parseResponseHead>;
      try {
        head = parseResponseHead(text, extra);
      } catch (err) {
        assert.ok(err instanceof Error && /replica/.test(err.message), `seed ${seed} case ${i}: threw ${err}`);
        continue;
      }
      const where = `seed ${seed} case ${i} ${JSON.stringify(text.slice(0, 200))}`;
      assert.ok(head.status >= 100 && head.status <= 999, where);
      assert.ok(head.contentLength === -1 || Number.isSafeInteger(head.contentLength), where);
      if (head.interim) continue;
      // Hop-by-hop headers, those the Connection header lists, and the replaced ones stay behind.
      const listed = text.split('\r\n').some(
        (l) =>
          /^connection:/i.test(l) &&
          l
            .slice(11)
            .split(',')
            .some((t) => t.trim().toLowerCase() === 'x-secret'),
      );
      for (let k = 0; k < head.headers.length - 2; k += 2) {
        const name = head.headers[k].toLowerCase();
        const dropped = HOP_BY_HOP.has(name) || name === 'x-ferry-replica' || (listed && name === 'x-secret');
        assert.ok(!dropped, `${where}: forwarded ${name}`);
      }
      assert.deepEqual(head.headers.slice(-2), extra, where);
    }
  });

  test('seeded random and malformed replica responses: every request ends, and the pool keeps working', async () => {
    const seed = fuzzSeed(0x9a7e);
    const rng = new Prng(seed);
    const iterations = fuzzIterations(400);
    const failures: string[] = [];
    const counts = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < iterations) {
        const n = next++;
        const script = scriptedResponse(rng);
        scripts.set(n, script);
        const method = rng.chance(0.1) ? 'HEAD' : 'GET';
        const outcome = await rawExchange(
          { port: frontPort },
          Buffer.from(`${method} /v2/x HTTP/1.1\r\nhost: f\r\nx-case: ${n}\r\nconnection: close\r\n\r\n`, 'latin1'),
          WAIT_MS,
        );
        const key = outcome.status === undefined ? 'cut' : String(outcome.status);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        if (outcome.hung)
          failures.push(`seed ${seed} case ${n}: no end after ${outcome.ms} ms [${script.what.join(' | ')}]`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // Each exchange settled exactly once (its bookkeeping, e.g. releasing the replica's slot, ran once).
    for (let n = 0; n < iterations; n++) {
      const times = settled.get(n) ?? 0;
      if (times !== 1)
        failures.push(`seed ${seed} case ${n}: settled ${times} times [${scripts.get(n)!.what.join(' | ')}]`);
    }
    console.log(
      `proxy fuzz seed ${seed}: ${iterations} responses, client outcomes ${JSON.stringify(Object.fromEntries(counts))}`,
    );
    assert.deepEqual(failures.slice(0, 10), []);
    // The same pool still forwards a good response.
    const good = await rawExchange(
      { port: frontPort },
      Buffer.from('GET /v2/ok HTTP/1.1\r\nhost: f\r\nx-case: -1\r\nconnection: close\r\n\r\n', 'latin1'),
      WAIT_MS,
    );
    assert.equal(good.status, 200);
    assert.match(good.text, /\r\n\r\ngood$/);
  });
});
