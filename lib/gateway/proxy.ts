/**
 * Forwards data-plane requests to replicas: status and headers are kept (minus hop-by-hop headers),
 * bodies of any size stream both ways, connections to replicas are pooled and kept alive.
 *
 * The client side is a small HTTP/1.1 client of our own over net sockets (a Unix domain socket or a
 * 127.0.0.1 TCP port) instead of node:http's: on this path node:http's client costs more CPU than
 * everything else the gateway does per request (bench/gateway-overhead.ts). A small body (a
 * content-length up to SMALL_BODY_BYTES, i.e. every batch-1 inference) is read whole and sent as one
 * write of head + body; a small response is collected and answered with one `end(buffer)`. Larger or
 * chunked bodies stream, with backpressure, as before. Only what a replica (node's http server) sends
 * needs to be understood: content-length, chunked or close-delimited bodies, 1xx interim responses.
 */
import type * as http from 'node:http';
import * as net from 'node:net';

/** Where a replica listens: a Unix domain socket, or else a TCP port on 127.0.0.1. */
export interface ReplicaAddress {
  readonly socketPath?: string;
  readonly port: number;
}

/** Called once per proxied request: the replica's status (undefined if none came) and what failed. */
export type ProxyDone = (status: number | undefined, error: Error | undefined) => void;

/** Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/** Request headers not passed on: hop-by-hop, the body framing (set anew), Expect (the gateway's server answered it). */
const DROPPED_REQUEST_HEADERS = new Set([...HOP_BY_HOP, 'content-length', 'expect', 'x-forwarded-for']);

/** Bodies up to this size are read whole and sent in one write; larger ones stream. */
export const SMALL_BODY_BYTES = 64 * 1024;
/** A response head larger than this is refused (node's own limit is 16 KiB). */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');

export interface ReplicaClientOptions {
  /** Most connections per replica; more requests wait for one to be free. Default 256. */
  maxConnections?: number;
  /** Most idle connections kept per replica. Default 64. */
  maxIdle?: number;
  /**
   * Idle connections are closed after this long (default 30 s), before the replica's own 65 s
   * keep-alive timeout, so a reused connection is never one the replica is closing.
   */
  idleTimeoutMs?: number;
}

/** One per gateway: the connection pools to its replicas. */
export class ReplicaClient {
  readonly maxConnections: number;
  readonly maxIdle: number;
  readonly idleTimeoutMs: number;
  private readonly pools = new Map<string | number, TargetPool>();
  private sweeper: NodeJS.Timeout | undefined;
  private destroyed = false;

  constructor(opts: ReplicaClientOptions = {}) {
    this.maxConnections = opts.maxConnections ?? 256;
    this.maxIdle = opts.maxIdle ?? 64;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  }

  pool(address: ReplicaAddress): TargetPool {
    const key = address.socketPath ?? address.port;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new TargetPool(this, address);
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** A pool with no connection and nobody waiting is dropped (its replica may be gone for good). */
  forget(pool: TargetPool): void {
    const key = pool.address.socketPath ?? pool.address.port;
    if (this.pools.get(key) === pool) this.pools.delete(key);
  }

  /** Starts the idle sweep once a connection is kept idle. */
  keepingIdle(): void {
    if (this.sweeper || this.destroyed) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(5000, this.idleTimeoutMs / 2)));
    this.sweeper.unref();
  }

  private sweep(): void {
    const before = Date.now() - this.idleTimeoutMs;
    let idle = 0;
    for (const pool of [...this.pools.values()]) idle += pool.closeIdleSince(before);
    if (idle === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Closes every connection; requests still running fail (the gateway is shutting down). */
  destroy(): void {
    this.destroyed = true;
    clearInterval(this.sweeper);
    for (const pool of [...this.pools.values()]) pool.destroy();
    this.pools.clear();
  }

  /** Open connections, idle ones included (for tests). */
  connectionCount(): number {
    let n = 0;
    for (const pool of this.pools.values()) n += pool.open;
    return n;
  }
}

/** The connections to one replica. */
class TargetPool {
  readonly idle: Connection[] = [];
  /** Connections open (idle or busy) or connecting. */
  open = 0;
  private readonly waiting: Exchange[] = [];

  constructor(
    readonly client: ReplicaClient,
    readonly address: ReplicaAddress,
  ) {}

  /** Gives `ex` a connection now, or when one is free. */
  acquire(ex: Exchange): void {
    const conn = this.idle.pop();
    if (conn) return conn.assign(ex);
    if (this.open < this.client.maxConnections) {
      this.open++;
      return new Connection(this).assign(ex);
    }
    this.waiting.push(ex);
  }

  /** A request waiting for a connection was abandoned. */
  cancel(ex: Exchange): void {
    const i = this.waiting.indexOf(ex);
    if (i !== -1) this.waiting.splice(i, 1);
  }

  release(conn: Connection): void {
    const next = this.waiting.shift();
    if (next) return conn.assign(next);
    if (this.idle.length >= this.client.maxIdle) return conn.destroy();
    conn.idleSince = Date.now();
    this.idle.push(conn);
    this.client.keepingIdle();
  }

  /** The connection closed (or failed to connect): a waiting request may open another. */
  closed(conn: Connection): void {
    this.open--;
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    const next = this.waiting.shift();
    if (next) {
      this.open++;
      new Connection(this).assign(next);
    } else if (this.open === 0) {
      this.client.forget(this);
    }
  }

  closeIdleSince(before: number): number {
    for (const conn of this.idle.filter((c) => c.idleSince < before)) conn.destroy();
    return this.idle.length;
  }

  destroy(): void {
    for (const ex of this.waiting.splice(0)) ex.fail(new Error('the gateway is shutting down'));
    for (const conn of [...this.idle]) conn.destroy();
  }
}

/** One keep-alive connection to a replica; runs one exchange at a time. */
class Connection {
  readonly socket: net.Socket;
  exchange: Exchange | undefined;
  idleSince = 0;
  private closed = false;

  constructor(readonly pool: TargetPool) {
    const { socketPath, port } = pool.address;
    this.socket = socketPath ? net.connect(socketPath) : net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      if (this.exchange) this.exchange.onResponseData(chunk);
      else this.destroy(); // bytes nobody asked for: this connection cannot be trusted any more
    });
    this.socket.on('end', () => this.exchange?.onResponseEnd());
    this.socket.on('drain', () => this.exchange?.onUpstreamDrain());
    this.socket.on('error', (err) => this.exchange?.fail(err));
    this.socket.on('close', () => {
      this.closed = true;
      this.exchange?.fail(new Error('the replica closed the connection'));
      this.pool.closed(this);
    });
  }

  assign(ex: Exchange): void {
    if (this.closed) return ex.fail(new Error('the replica closed the connection'));
    this.exchange = ex;
    ex.attach(this);
  }

  /** The exchange is over: back to the pool, or closed when it cannot carry another request. */
  finish(reusable: boolean): void {
    this.exchange = undefined;
    if (reusable && !this.closed) this.pool.release(this);
    else this.destroy();
  }

  destroy(): void {
    this.exchange = undefined;
    this.socket.destroy();
  }
}

enum Body {
  /** Reading the status line and headers. */
  Head,
  /** `remaining` bytes of a content-length body. */
  Length,
  /** Chunked: a chunk-size line (into `line`). */
  ChunkSize,
  /** Chunked: `remaining` bytes of chunk data. */
  ChunkData,
  /** Chunked: the CRLF after a chunk (`remaining` bytes of it). */
  ChunkEnd,
  /** Chunked: trailer lines until an empty one (into `line`). */
  Trailers,
  /** No length: the body ends when the replica closes the connection. */
  UntilClose,
  Done,
}

enum RequestBody {
  /** No body, or a small one already in `body`: sent with the head. */
  Whole,
  /** content-length: `length` bytes streamed as they arrive. */
  Length,
  /** Unknown length (chunked from the client): streamed with chunked framing. */
  Chunked,
}

/** One request forwarded to a replica and its response. */
class Exchange {
  private conn: Connection | undefined;
  private settled = false;
  /** True once the request (head and body) was handed to the replica's socket in full. */
  private requestSent = false;
  private requestMode = RequestBody.Whole;
  /** A small body being read, then sent with the head. */
  private bodyChunks: Buffer[] | undefined;
  private bodySize = 0;
  private body: Buffer | undefined;

  private state = Body.Head;
  private head: Buffer | undefined;
  private status = 0;
  private responseHeaders: string[] = [];
  private remaining = 0;
  private line = '';
  private keepAlive = true;
  /** Collect the body and answer with one end(buffer) (small content-length responses). */
  private collect: Buffer[] | undefined;
  private collected = 0;
  /** Reading from the replica is paused until the client drains. */
  private paused = false;
  private readonly noBodyExpected: boolean;

  constructor(
    private readonly pool: TargetPool,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly upstreamPath: string,
    private readonly extraHeaders: readonly string[],
    private readonly done: ProxyDone,
  ) {
    this.noBodyExpected = req.method === 'HEAD';
    (res as ExchangeCarrier)[kExchange] = this;
    res.on('close', onClientClose);
  }

  start(): void {
    const req = this.req;
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    if (te !== undefined) {
      this.requestMode = RequestBody.Chunked;
      this.pool.acquire(this);
    } else if (cl === undefined || cl === '0') {
      req.resume(); // nothing to read, but 'end' must come
      this.pool.acquire(this);
    } else if (Number(cl) <= SMALL_BODY_BYTES) {
      this.readWholeBody();
    } else {
      this.requestMode = RequestBody.Length;
      this.pool.acquire(this);
    }
  }

  /** Small bodies: read whole (usually one chunk, already there), then sent with the head. */
  private readWholeBody(): void {
    this.bodyChunks = [];
    (this.req as ExchangeCarrier)[kExchange] = this;
    this.req.on('data', onWholeBodyData);
    this.req.on('end', onWholeBodyEnd);
  }

  bodyData(chunk: Buffer): void {
    this.bodyChunks?.push(chunk);
    this.bodySize += chunk.length;
  }

  bodyEnd(): void {
    const chunks = this.bodyChunks!;
    this.bodyChunks = undefined;
    if (this.settled) return;
    this.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.bodySize);
    this.pool.acquire(this);
  }

  /** The request's head: request line, forwarded headers, x-forwarded-for, framing. */
  private requestHead(): string {
    const req = this.req;
    const raw = req.rawHeaders;
    const connectionTokens = listedInConnection(req.headers.connection);
    let head = `${req.method} ${this.upstreamPath} HTTP/1.1\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i].toLowerCase();
      if (DROPPED_REQUEST_HEADERS.has(lower) || connectionTokens?.includes(lower)) continue;
      head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    head += `x-forwarded-for: ${req.socket.remoteAddress ?? ''}\r\n`;
    if (this.requestMode === RequestBody.Chunked) head += 'transfer-encoding: chunked\r\n\r\n';
    else if (this.requestMode === RequestBody.Length)
      head += `content-length: ${req.headers['content-length']}\r\n\r\n`;
    else if (this.body !== undefined) head += `content-length: ${this.body.length}\r\n\r\n`;
    else head += '\r\n';
    return head;
  }

  /** A connection is ours: send the request. */
  attach(conn: Connection): void {
    if (this.settled) return conn.finish(true);
    this.conn = conn;
    const socket = conn.socket;
    const head = this.requestHead();
    if (this.requestMode === RequestBody.Whole) {
      if (this.body === undefined) {
        socket.write(head, 'latin1');
      } else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(this.body);
        socket.uncork();
      }
      this.body = undefined;
      this.requestSent = true;
      return;
    }
    socket.write(head, 'latin1');
    const req = this.req;
    const chunked = this.requestMode === RequestBody.Chunked;
    req.on('data', (chunk: Buffer) => {
      if (this.settled || chunk.length === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        ok = socket.write(chunk);
      }
      if (!ok) req.pause();
    });
    req.on('end', () => {
      if (this.settled) return;
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.requestSent = true;
    });
  }

  onUpstreamDrain(): void {
    if (!this.requestSent) this.req.resume();
  }

  // ---- the response ----

  onResponseData(chunk: Buffer): void {
    if (this.settled) return;
    let data = chunk;
    while (data.length > 0 && !this.settled) {
      switch (this.state) {
        case Body.Head: {
          data = this.readHead(data);
          break;
        }
        case Body.Length: {
          const n = Math.min(this.remaining, data.length);
          this.emit(n === data.length ? data : data.subarray(0, n));
          this.remaining -= n;
          data = data.subarray(n);
          if (this.remaining === 0) this.complete(data.length === 0);
          break;
        }
        case Body.ChunkSize:
        case Body.Trailers: {
          const nl = data.indexOf(10); // '\n'
          if (nl === -1) {
            this.line += data.toString('latin1');
            if (this.line.length > MAX_HEAD_BYTES)
              return this.fail(new Error('malformed chunked response from the replica'));
            return;
          }
          const text = (this.line + data.toString('latin1', 0, nl)).replace(/\r$/, '');
          this.line = '';
          data = data.subarray(nl + 1);
          if (this.state === Body.Trailers) {
            if (text === '') this.complete(data.length === 0);
            break;
          }
          const semicolon = text.indexOf(';');
          const sizeText = (semicolon === -1 ? text : text.slice(0, semicolon)).trim();
          const size = /^[0-9a-fA-F]{1,12}$/.test(sizeText) ? parseInt(sizeText, 16) : NaN;
          if (Number.isNaN(size)) return this.fail(new Error('malformed chunked response from the replica'));
          if (size === 0) this.state = Body.Trailers;
          else {
            this.state = Body.ChunkData;
            this.remaining = size;
          }
          break;
        }
        case Body.ChunkData: {
          const n = Math.min(this.remaining, data.length);
          this.emit(n === data.length ? data : data.subarray(0, n));
          this.remaining -= n;
          data = data.subarray(n);
          if (this.remaining === 0) {
            this.state = Body.ChunkEnd;
            this.remaining = 2;
          }
          break;
        }
        case Body.ChunkEnd: {
          const n = Math.min(this.remaining, data.length);
          this.remaining -= n;
          data = data.subarray(n);
          if (this.remaining === 0) this.state = Body.ChunkSize;
          break;
        }
        case Body.UntilClose: {
          this.emit(data);
          data = data.subarray(data.length);
          break;
        }
        default:
          // More bytes than the response had: do not reuse this connection.
          this.keepAlive = false;
          return;
      }
    }
  }

  /** Parses the status line and headers; returns the bytes after them. */
  private readHead(chunk: Buffer): Buffer {
    let data = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    const end = data.indexOf(CRLF2);
    if (end === -1) {
      if (data.length > MAX_HEAD_BYTES) this.fail(new Error('the replica sent a response head larger than 64 KiB'));
      else this.head = data;
      return EMPTY;
    }
    this.head = undefined;
    const text = data.toString('latin1', 0, end);
    data = data.subarray(end + 4);
    // Status line: HTTP/1.x NNN[ reason]
    const d0 = text.charCodeAt(9) - 48;
    const d1 = text.charCodeAt(10) - 48;
    const d2 = text.charCodeAt(11) - 48;
    const after = text.length > 12 ? text.charCodeAt(12) : 13;
    if (
      !text.startsWith('HTTP/1.') ||
      text.charCodeAt(8) !== 32 ||
      !(d0 >= 1 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9) ||
      (after !== 32 && after !== 13)
    ) {
      this.fail(new Error(`malformed response from the replica: ${JSON.stringify(text.slice(0, 100))}`));
      return EMPTY;
    }
    const status = d0 * 100 + d1 * 10 + d2;
    if (status < 200 && status !== 101) return data; // 100 Continue, 103 Early Hints: the final response follows
    const http10 = text.charCodeAt(7) === 48;
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let connection: string | undefined;
    let eol = text.indexOf('\r\n');
    while (eol !== -1) {
      const start = eol + 2;
      eol = text.indexOf('\r\n', start);
      const lineEnd = eol === -1 ? text.length : eol;
      const colon = text.indexOf(':', start);
      if (colon <= start || colon >= lineEnd) {
        this.fail(new Error("malformed header line in the replica's response"));
        return EMPTY;
      }
      const name = text.slice(start, colon);
      const value = text.slice(colon + 1, lineEnd).trim();
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
        if (Number.isNaN(n) || (contentLength !== -1 && contentLength !== n)) {
          this.fail(new Error("invalid content-length in the replica's response"));
          return EMPTY;
        }
        contentLength = n;
      } else if (lower === 'transfer-encoding') {
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
        if (!chunked) this.keepAlive = false; // some other coding: delimited by close
        continue;
      } else if (lower === 'connection') {
        connection = connection === undefined ? value.toLowerCase() : `${connection},${value.toLowerCase()}`;
        continue;
      } else if (HOP_BY_HOP.has(lower) || this.isExtraHeader(lower)) {
        continue;
      }
      headers.push(name, value);
    }
    if (connection !== undefined) {
      const tokens = connection.split(',').map((t) => t.trim());
      if (tokens.includes('close')) this.keepAlive = false;
      if (tokens.some((t) => t !== 'close' && t !== 'keep-alive')) {
        for (let i = headers.length - 2; i >= 0; i -= 2)
          if (tokens.includes(headers[i].toLowerCase())) headers.splice(i, 2);
      }
    }
    if (http10 && !(connection ?? '').includes('keep-alive')) this.keepAlive = false;
    for (let i = 0; i < this.extraHeaders.length; i++) headers.push(this.extraHeaders[i]);
    this.status = status;
    this.responseHeaders = headers;

    if (this.noBodyExpected || status === 204 || status === 304 || status === 101) {
      this.state = Body.Done;
      this.writeHead(true);
      this.complete(data.length === 0);
      return EMPTY;
    }
    if (chunked) {
      if (contentLength !== -1)
        for (let i = headers.length - 2; i >= 0; i -= 2)
          if (headers[i].toLowerCase() === 'content-length') headers.splice(i, 2);
      this.state = Body.ChunkSize;
      this.writeHead(false);
    } else if (contentLength !== -1) {
      this.state = Body.Length;
      this.remaining = contentLength;
      if (contentLength <= SMALL_BODY_BYTES) {
        this.collect = [];
      } else {
        this.writeHead(false);
      }
      if (contentLength === 0) this.complete(data.length === 0);
    } else {
      this.state = Body.UntilClose;
      this.keepAlive = false;
      this.writeHead(false);
    }
    return data;
  }

  private isExtraHeader(lower: string): boolean {
    for (let i = 0; i < this.extraHeaders.length; i += 2) if (this.extraHeaders[i] === lower) return true;
    return false;
  }

  private writeHead(noBody: boolean): void {
    try {
      this.res.writeHead(this.status, this.responseHeaders);
      if (noBody) this.res.end();
    } catch (err) {
      // node refuses a header the replica sent (an invalid character): nothing has been sent yet.
      this.fail(err as Error);
    }
  }

  private emit(piece: Buffer): void {
    if (this.collect) {
      this.collect.push(piece);
      this.collected += piece.length;
      return;
    }
    if (!this.res.write(piece) && this.conn && !this.paused) {
      // The client reads slower than the replica writes: stop reading from the replica until it caught up.
      const socket = this.conn.socket;
      this.paused = true;
      socket.pause();
      this.res.once('drain', () => {
        if (!this.paused) return;
        this.paused = false;
        socket.resume();
      });
    }
  }

  /** The response is complete. `clean`: no stray bytes followed it. */
  private complete(clean: boolean): void {
    if (this.settled) return;
    this.state = Body.Done;
    const collect = this.collect;
    if (collect) {
      this.collect = undefined;
      try {
        this.res.writeHead(this.status, this.responseHeaders);
      } catch (err) {
        return this.fail(err as Error);
      }
      this.res.end(collect.length === 1 ? collect[0] : Buffer.concat(collect, this.collected));
    } else if (!this.res.writableEnded) {
      this.res.end();
    }
    this.settle(this.status, undefined, clean && this.keepAlive && this.requestSent);
  }

  onResponseEnd(): void {
    if (this.state === Body.UntilClose) this.complete(true);
    // Otherwise 'close' follows and fails the exchange.
  }

  /** The exchange failed: a 502 when nothing was answered yet, otherwise the client's connection is cut. */
  fail(err: Error): void {
    if (this.settled) return;
    const res = this.res;
    if (!res.headersSent && !res.destroyed) {
      const { socketPath, port } = this.pool.address;
      const body = JSON.stringify({
        error: `replica ${socketPath ? `at ${socketPath}` : `on port ${port}`} failed: ${err.message}`,
      });
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else if (!res.writableFinished) {
      res.destroy(err);
    }
    this.settle(this.status || undefined, err, false);
  }

  /** The client went away before its response was complete: stop the replica's work too. */
  clientClosed(): void {
    if (this.settled || this.res.writableFinished) return;
    this.settle(this.status || undefined, new Error('the client closed the connection'), false);
  }

  private settle(status: number | undefined, error: Error | undefined, reusable: boolean): void {
    this.settled = true;
    this.res.removeListener('close', onClientClose);
    const conn = this.conn;
    this.conn = undefined;
    if (conn && this.paused) {
      // Paused for a slow client when the response ended: the next exchange must read again.
      this.paused = false;
      conn.socket.resume();
    }
    if (conn) conn.finish(reusable);
    else this.pool.cancel(this);
    if (!this.requestSent) this.req.resume(); // whatever is left of the body is not wanted
    this.done(status, error);
  }
}

const EMPTY = Buffer.alloc(0);

// Listeners shared by all exchanges (no closures per request): the exchange rides on the emitter.
const kExchange = Symbol('ferry.exchange');
type ExchangeCarrier = { [kExchange]?: Exchange };

function onClientClose(this: http.ServerResponse): void {
  (this as ExchangeCarrier)[kExchange]?.clientClosed();
}

function onWholeBodyData(this: http.IncomingMessage, chunk: Buffer): void {
  (this as ExchangeCarrier)[kExchange]?.bodyData(chunk);
}

function onWholeBodyEnd(this: http.IncomingMessage): void {
  (this as ExchangeCarrier)[kExchange]?.bodyEnd();
}

/** Header names listed in a Connection header (also hop-by-hop); undefined for none. */
function listedInConnection(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const tokens = value
    .toLowerCase()
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive');
  return tokens.length ? tokens : undefined;
}

/**
 * Sends `req` to the replica at `address` with path `upstreamPath` and answers `res` with its response
 * plus `extraResponseHeaders` ([name, value, ...], names in lower case; they replace the replica's).
 * `done` is called once when the exchange is over; a failure before any response is a 502 JSON error.
 */
export function proxyToReplica(
  client: ReplicaClient,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  address: ReplicaAddress,
  upstreamPath: string,
  extraResponseHeaders: readonly string[],
  done: ProxyDone,
): void {
  new Exchange(client.pool(address), req, res, upstreamPath, extraResponseHeaders, done).start();
}
