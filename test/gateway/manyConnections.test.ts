/**
 * Bounded concurrency: 3000 connections on 127.0.0.1 to one gateway (idle ones, slowloris heads that
 * trickle a byte at a time, slow bodies) while normal inference requests keep being answered with a
 * bounded latency and none fails; the header and request timeouts then close the stalled ones. And the
 * connection cap: connections past it are closed at once, while those admitted are served.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway } from '../../lib/gateway';
import { rawExchange } from '../runtime/httpFuzz';
import {
  control,
  type GatewayFixture,
  inferThrough,
  MLP_V1,
  modelDirWith,
  startTestGateway,
  tempDir,
} from './gatewayFixture';

const PER_KIND = 1000;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 14_000;

interface Held {
  socket: net.Socket;
  openedAt: number;
  closedAt?: number;
  /** First bytes the gateway sent back, if any (a 408 before closing). */
  answer: string;
}

/** Opens a connection and resolves once it is connected (or failed); the gateway may close it later. */
function open(port: number, held: Held[]): Promise<Held> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const h: Held = { socket, openedAt: Date.now(), answer: '' };
    held.push(h);
    socket.on('data', (d) => {
      if (h.answer.length < 200) h.answer += d.toString('latin1');
    });
    socket.on('close', () => {
      h.closedAt = Date.now();
      resolve(h);
    });
    socket.on('error', () => undefined);
    socket.on('connect', () => resolve(h));
  });
}

async function openMany(port: number, n: number, held: Held[]): Promise<Held[]> {
  const out: Held[] = [];
  // In waves, under the listen backlog, so no connection waits on a SYN retry.
  for (let i = 0; i < n; i += 200) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => open(port, held)))));
  }
  return out;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

describe('gateway under thousands of connections', () => {
  let fx: GatewayFixture;
  let port: number;
  const held: Held[] = [];

  before(async () => {
    fx = await startTestGateway('manyconn', {
      standby: false,
      limits: { maxConnections: 4000, headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS },
    });
    const modelDir = await modelDirWith(MLP_V1, fx.dir);
    const res = await control(fx.gateway.url, 'PUT', '/deployments/lc', { modelDir, replicas: 1, model: 'mlp' });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    port = Number(new URL(fx.gateway.url).port);
  });

  after(async () => {
    for (const h of held) h.socket.destroy();
    await fx.cleanup();
  });

  test('3000 idle, slowloris and slow-body connections: inference keeps answering, then the stalled ones are cut', async () => {
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const idle = await openMany(port, PER_KIND, held);
    const slowHeads = await openMany(port, PER_KIND, held);
    const slowBodies = await openMany(port, PER_KIND, held);
    const openedMs = Date.now() - started;
    assert.equal(held.filter((h) => h.closedAt !== undefined).length, 0, 'connections closed while opening the others');
    for (const h of slowHeads) h.socket.write('POST /d/lc/v2/models/mlp/infer HTTP/1.1\r\nhost: x\r\nx-slow: ');
    for (const h of slowBodies)
      h.socket.write('POST /d/lc/v2/models/mlp/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2000\r\n\r\n{"inputs":');
    // A byte every 400 ms on each of the 2000 slow connections, for as long as the gateway lets them.
    const trickle = setInterval(() => {
      for (const h of slowHeads) if (h.closedAt === undefined) h.socket.write('a');
      for (const h of slowBodies) if (h.closedAt === undefined) h.socket.write(' ');
    }, 400);

    // Meanwhile: normal requests, one after another, for 3 s (well before the timeouts cut anything).
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const t = performance.now();
      const res = await inferThrough(`${fx.gateway.url}/d/lc`);
      latencies.push(performance.now() - t);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = percentile(sorted, 0.5);
    const p99 = percentile(sorted, 0.99);
    console.log(
      `3000 connections opened in ${openedMs} ms; ${latencies.length} inferences meanwhile: p50 ${p50.toFixed(1)} ms, ` +
        `p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms; test process RSS +${((process.memoryUsage().rss - rssBefore) / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.deepEqual([...statuses.keys()], [200], `every inference answered 200: ${JSON.stringify([...statuses])}`);
    assert.ok(latencies.length >= 20, `only ${latencies.length} inferences in 3 s`);
    assert.ok(p99 < 500, `p99 ${p99.toFixed(1)} ms`);

    // The header timeout closes the idle and slowloris connections (with a 408), the request timeout the slow bodies.
    const deadline = Date.now() + REQUEST_TIMEOUT_MS + 6000;
    while (Date.now() < deadline && held.some((h) => h.closedAt === undefined)) await sleep(200);
    clearInterval(trickle);
    const openStill = (list: Held[]) => list.filter((h) => h.closedAt === undefined).length;
    assert.equal(openStill(idle), 0, 'idle connections left open');
    assert.equal(openStill(slowHeads), 0, 'slowloris connections left open');
    assert.equal(openStill(slowBodies), 0, 'slow-body connections left open');
    const cutEarly = held.filter((h) => h.closedAt! - h.openedAt < HEADERS_TIMEOUT_MS - 500).length;
    assert.equal(cutEarly, 0, 'no connection is cut before its timeout');
    assert.ok(
      slowBodies.every((h) => h.answer.startsWith('HTTP/1.1 408')),
      'slow bodies are told 408',
    );
    // And the gateway still serves.
    assert.equal((await inferThrough(`${fx.gateway.url}/d/lc`)).status, 200);
  });
});

describe('gateway connection cap', () => {
  test('connections past the cap are closed at once; admitted ones are served', async () => {
    const dir = await tempDir('conncap');
    const logs: string[] = [];
    const gateway = await startGateway({
      port: 0,
      stateDir: `${dir}/state`,
      standby: false,
      limits: { maxConnections: 50 },
      log: (m) => logs.push(m),
    });
    const port = Number(new URL(gateway.url).port);
    const held: Held[] = [];
    try {
      await openMany(port, 50, held);
      const extra = await openMany(port, 30, held);
      await sleep(300);
      assert.equal(extra.filter((h) => h.closedAt !== undefined).length, 30, 'connections past the cap closed');
      assert.equal(held.slice(0, 50).filter((h) => h.closedAt !== undefined).length, 0);
      // An admitted connection is served (an unknown deployment: a 404 from the gateway itself).
      const first = held[0];
      const answered = new Promise<string>((resolve) =>
        first.socket.once('data', (d) => resolve(d.toString('latin1'))),
      );
      first.socket.write('GET /d/none/v2 HTTP/1.1\r\nhost: x\r\n\r\n');
      assert.match(await answered, /^HTTP\/1\.1 404/);
      // Once some close, new connections are admitted again.
      for (const h of held.slice(1, 11)) h.socket.destroy();
      await sleep(200);
      const again = await rawExchange(
        { port },
        Buffer.from('GET /d/none/v2 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'),
        3000,
      );
      assert.equal(again.status, 404);
      await sleep(1100);
      assert.ok(
        logs.some((l) => /30 connection\(s\) refused: at the cap of 50/.test(l)),
        logs.join('\n'),
      );
    } finally {
      for (const h of held) h.socket.destroy();
      await gateway.close({ stopReplicas: true });
    }
  });
});
