/**
 * The gateway's HTTP/1.1 client (lib/gateway/proxy.ts) against plain node:http servers standing in for
 * replicas, on a Unix domain socket and on TCP: framing (content-length, chunked, close-delimited, HEAD,
 * 204, 1xx), big bodies streaming both ways, header forwarding, keep-alive reuse, failures and aborts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { proxyToReplica, type ReplicaAddress, ReplicaClient, SMALL_BODY_BYTES } from '../../lib/gateway/proxy';
import { freePort } from '../../lib/gateway/replicaProcess';

interface Upstream {
  address: ReplicaAddress;
  server: http.Server | net.Server;
  /** Connections the upstream accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

async function listen(server: http.Server | net.Server, socketPath?: string): Promise<ReplicaAddress> {
  await new Promise<void>((resolve) =>
    socketPath ? server.listen(socketPath, resolve) : server.listen(0, '127.0.0.1', resolve),
  );
  return socketPath ? { socketPath, port: 0 } : { port: (server.address() as AddressInfo).port };
}

async function upstream(handler: http.RequestListener, socketPath?: string): Promise<Upstream> {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 65_000;
  let connections = 0;
  server.on('connection', () => connections++);
  const address = await listen(server, socketPath);
  return {
    address,
    server,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A raw upstream that answers every request with `response` bytes (to test what node:http never sends). */
async function rawUpstream(response: (request: string) => string | Buffer, socketPath?: string): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = text.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (text.length < end + 4 + length) return;
      text = text.slice(end + 4 + length);
      const answer = response(head);
      if (/\r\nconnection: close\r\n/i.test(answer.toString('latin1'))) socket.end(answer);
      else socket.write(answer);
    });
    socket.on('error', () => undefined);
  });
  const address = await listen(server, socketPath);
  return {
    address,
    server,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Front {
  url: string;
  outcomes: Array<{ status: number | undefined; error: Error | undefined }>;
  close(): Promise<void>;
}

/** The gateway's side: a server that proxies everything to `target` through `client`. */
async function front(client: ReplicaClient, target: () => ReplicaAddress): Promise<Front> {
  const outcomes: Front['outcomes'] = [];
  const server = http.createServer((req, res) =>
    proxyToReplica(
      client,
      req,
      res,
      target(),
      req.url!,
      ['x-ferry-replica', '42', 'x-ferry-revision', 'v1'],
      (status, error) => outcomes.push({ status, error }),
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    outcomes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A request with node:http (full control over headers, no fetch normalisation). */
function request(
  url: string,
  opts: http.RequestOptions & { body?: Buffer | string | Buffer[] } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error('the response was cut off'));
      });
    });
    req.on('error', reject);
    if (Array.isArray(opts.body)) {
      for (const b of opts.body) req.write(b);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const transport of ['unix socket', 'tcp'] as const) {
  describe(`gateway proxy over ${transport}`, () => {
    let dir: string;
    let client: ReplicaClient;
    let n = 0;
    const socketPath = () => (transport === 'tcp' ? undefined : path.join(dir, `u${n++}.sock`));

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-proxy-'));
      client = new ReplicaClient();
    });
    after(async () => {
      client.destroy();
      await rm(dir, { recursive: true, force: true });
    });

    test('small request and response: headers forwarded, hop-by-hop stripped, gateway headers set, keep-alive reused', async () => {
      let seen: http.IncomingHttpHeaders | undefined;
      let seenRaw: string[] = [];
      const up = await upstream((req, res) => {
        seen = req.headers;
        seenRaw = req.rawHeaders;
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(201, [
            'Content-Type',
            'application/json',
            'Content-Length',
            String(body.length + 2),
            'X-Custom',
            'a',
            'Set-Cookie',
            'one=1',
            'Set-Cookie',
            'two=2',
            'Keep-Alive',
            'timeout=65',
            'X-Ferry-Replica',
            'spoofed',
            'Connection',
            'x-private, keep-alive',
            'X-Private',
            'secret',
          ]);
          res.end(`[${body}]`);
        });
      }, socketPath());
      const fr = await front(client, () => up.address);
      try {
        for (let i = 0; i < 3; i++) {
          const r = await request(`${fr.url}/v2/models/m/infer?x=1`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'x-user-group': 'beta',
              connection: 'keep-alive, x-hop',
              'x-hop': 'drop me',
              te: 'trailers',
              'x-forwarded-for': '6.6.6.6',
              authorization: 'Bearer fry_the-callers-key',
            },
            body: `{"i":${i}}`,
          });
          assert.equal(r.status, 201);
          assert.equal(r.body.toString(), `[{"i":${i}}]`);
          assert.equal(r.headers['x-custom'], 'a');
          assert.deepEqual(r.headers['set-cookie'], ['one=1', 'two=2']);
          assert.equal(r.headers['x-ferry-replica'], '42');
          assert.equal(r.headers['x-ferry-revision'], 'v1');
          assert.equal(r.headers['x-private'], undefined, 'a header the replica named in Connection is not forwarded');
          assert.notEqual(
            r.headers['keep-alive'],
            'timeout=65',
            "the replica's keep-alive is not forwarded (the gateway's own server sets one)",
          );
        }
        assert.equal(seen!['x-user-group'], 'beta');
        assert.equal(seen!['content-length'], '7');
        assert.equal(seen!['x-hop'], undefined, 'a header the client named in Connection is not forwarded');
        assert.equal(seen!.te, undefined);
        assert.equal(seen!['x-forwarded-for'], '127.0.0.1');
        assert.equal(seen!.authorization, undefined, "the caller's key stays with the gateway");
        assert.ok(seenRaw.includes('x-user-group'));
        assert.equal(up.connections(), 1, 'one keep-alive connection carried every request');
        assert.deepEqual(
          fr.outcomes.map((o) => o.status),
          [201, 201, 201],
        );
      } finally {
        await fr.close();
        await up.close();
      }
    });

    test('big bodies stream both ways (request and response larger than the small-body limit, chunked too)', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      let firstChunkBeforeEnd = false;
      const up = await upstream((req, res) => {
        const hash = createHash('sha256');
        let size = 0;
        let ended = false;
        req.on('data', (c: Buffer) => {
          if (size === 0) firstChunkBeforeEnd = !ended;
          hash.update(c);
          size += c.length;
        });
        req.on('end', () => {
          ended = true;
          const digest = hash.digest('hex');
          if (req.url === '/chunked') {
            // No content-length: node sends it chunked.
            res.writeHead(200, {
              'content-type': 'application/octet-stream',
              'x-request-sha': digest,
              'x-request-size': String(size),
              'x-te': String(req.headers['transfer-encoding']),
            });
            for (let off = 0; off < big.length; off += 100_000) res.write(big.subarray(off, off + 100_000));
            res.end();
          } else {
            res.writeHead(200, {
              'content-type': 'application/octet-stream',
              'content-length': big.length,
              'x-request-sha': digest,
              'x-request-size': String(size),
            });
            res.end(big);
          }
        });
      }, socketPath());
      const fr = await front(client, () => up.address);
      try {
        const r = await request(`${fr.url}/length`, {
          method: 'POST',
          headers: { 'content-length': String(big.length) },
          body: big,
        });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-request-size'], String(big.length));
        assert.equal(r.headers['x-request-sha'], sha(big));
        assert.equal(r.headers['content-length'], String(big.length));
        assert.equal(sha(r.body), sha(big));
        assert.ok(firstChunkBeforeEnd);

        // A chunked request (no content-length) and a chunked response.
        const pieces = [
          big.subarray(0, 1000),
          big.subarray(1000, SMALL_BODY_BYTES * 3),
          big.subarray(SMALL_BODY_BYTES * 3),
        ];
        const c = await request(`${fr.url}/chunked`, {
          method: 'POST',
          headers: { 'transfer-encoding': 'chunked' },
          body: pieces,
        });
        assert.equal(c.status, 200);
        assert.equal(c.headers['x-te'], 'chunked');
        assert.equal(c.headers['x-request-sha'], sha(big));
        assert.equal(c.headers['transfer-encoding'], 'chunked');
        assert.equal(sha(c.body), sha(big));
        assert.deepEqual(
          fr.outcomes.map((o) => [o.status, o.error]),
          [
            [200, undefined],
            [200, undefined],
          ],
        );
      } finally {
        await fr.close();
        await up.close();
      }
    });

    test('HEAD, 204 and 304 have no body; GET without a body; a keep-alive connection survives them', async () => {
      const up = await upstream((req, res) => {
        if (req.url === '/204') return res.writeHead(204).end();
        if (req.url === '/304') return res.writeHead(304, { etag: '"x"' }).end();
        const body = 'hello';
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
      }, socketPath());
      const fr = await front(client, () => up.address);
      try {
        const head = await request(`${fr.url}/x`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers['content-length'], '5');
        assert.equal(head.body.length, 0);
        assert.equal((await request(`${fr.url}/204`)).status, 204);
        const notModified = await request(`${fr.url}/304`);
        assert.equal(notModified.status, 304);
        assert.equal(notModified.headers.etag, '"x"');
        const get = await request(`${fr.url}/x`);
        assert.equal(get.body.toString(), 'hello');
        assert.equal(up.connections(), 1);
      } finally {
        await fr.close();
        await up.close();
      }
    });

    test('what node:http never sends: 100 Continue before the answer, a close-delimited body, chunk extensions and trailers', async () => {
      const up = await rawUpstream((head) => {
        if (head.startsWith('GET /close'))
          return 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end';
        if (head.startsWith('GET /chunks'))
          return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';
        return 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok';
      }, socketPath());
      const fr = await front(client, () => up.address);
      try {
        const cont = await request(`${fr.url}/continue`);
        assert.equal(cont.status, 202);
        assert.equal(cont.body.toString(), 'ok');
        const chunks = await request(`${fr.url}/chunks`);
        assert.equal(chunks.body.toString(), 'abc0123456789');
        const close = await request(`${fr.url}/close`);
        assert.equal(close.status, 200);
        assert.equal(close.body.toString(), 'until the end');
        assert.deepEqual(
          fr.outcomes.map((o) => o.status),
          [202, 200, 200],
        );
      } finally {
        await fr.close();
        await up.close();
      }
    });

    test('a malformed response, or a replica that dies mid-response: 502 while nothing was answered, else the client is cut off', async () => {
      const up = await rawUpstream((head) => {
        if (head.startsWith('GET /garbage')) return 'SMTP ready\r\n\r\n';
        if (head.startsWith('GET /big'))
          return `HTTP/1.1 200 OK\r\nContent-Length: ${SMALL_BODY_BYTES * 4}\r\n\r\nonly a part`;
        return 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part';
      }, socketPath());
      const fr = await front(client, () => up.address);
      try {
        const garbage = await request(`${fr.url}/garbage`);
        assert.equal(garbage.status, 502);
        assert.match(JSON.parse(garbage.body.toString()).error, /malformed response/);
        // A small response is collected before it is answered: the client gets a 502.
        const small = request(`${fr.url}/small`);
        // A big one streams: its head went out, so the client's connection is cut.
        const big = request(`${fr.url}/big`);
        await sleep(100);
        await up.close();
        assert.equal((await small).status, 502);
        await assert.rejects(big);
        assert.equal(fr.outcomes.length, 3);
        assert.ok(fr.outcomes.every((o) => o.error !== undefined));
        assert.deepEqual(fr.outcomes.map((o) => o.status).sort(), [200, 200, undefined]);
      } finally {
        await fr.close();
      }
    });

    test('a replica that is not there: 502 with the reason', async () => {
      const address: ReplicaAddress =
        transport === 'tcp' ? { port: await freePort() } : { socketPath: path.join(dir, 'missing.sock'), port: 0 };
      const fr = await front(client, () => address);
      try {
        const r = await request(`${fr.url}/v2/health/ready`);
        assert.equal(r.status, 502);
        assert.match(JSON.parse(r.body.toString()).error, /replica .* failed: .*(ENOENT|ECONNREFUSED|closed)/);
        assert.equal(fr.outcomes[0].status, undefined);
      } finally {
        await fr.close();
      }
    });

    test('a client that goes away mid-request closes the replica connection too', async () => {
      let upstreamClosed = false;
      const up = await upstream((req) => {
        req.socket.on('close', () => (upstreamClosed = true));
        // never answers
      }, socketPath());
      const fr = await front(client, () => up.address);
      try {
        const req = http.request(`${fr.url}/slow`, {
          agent: false,
          method: 'POST',
          headers: { 'content-length': '2' },
        });
        req.on('error', () => undefined);
        req.end('{}');
        await sleep(200);
        req.destroy();
        for (let i = 0; i < 50 && !upstreamClosed; i++) await sleep(20);
        assert.ok(upstreamClosed, 'the replica saw its connection close');
        assert.equal(fr.outcomes.length, 1);
        assert.match(fr.outcomes[0].error?.message ?? '', /client closed/);
      } finally {
        await fr.close();
        await up.close();
      }
    });

    test('connections per replica are capped: requests beyond the cap wait for a free one', async () => {
      const capped = new ReplicaClient({ maxConnections: 2 });
      let active = 0;
      let most = 0;
      const up = await upstream(async (_req, res) => {
        active++;
        most = Math.max(most, active);
        await sleep(30);
        active--;
        res.writeHead(200, { 'content-length': 2 }).end('ok');
      }, socketPath());
      const fr = await front(capped, () => up.address);
      try {
        const all = await Promise.all(Array.from({ length: 8 }, () => request(`${fr.url}/x`)));
        assert.deepEqual(
          all.map((r) => r.status),
          Array(8).fill(200),
        );
        assert.equal(most, 2);
        assert.equal(up.connections(), 2);
      } finally {
        capped.destroy();
        await fr.close();
        await up.close();
      }
    });

    test('idle connections are closed after the idle timeout', async () => {
      const short = new ReplicaClient({ idleTimeoutMs: 150 });
      const up = await upstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'), socketPath());
      const fr = await front(short, () => up.address);
      try {
        assert.equal((await request(`${fr.url}/x`)).status, 200);
        assert.equal(short.connectionCount(), 1);
        for (let i = 0; i < 50 && short.connectionCount() > 0; i++) await sleep(20);
        assert.equal(short.connectionCount(), 0);
        assert.equal((await request(`${fr.url}/x`)).status, 200);
        assert.equal(up.connections(), 2);
      } finally {
        short.destroy();
        await fr.close();
        await up.close();
      }
    });
  });
}
