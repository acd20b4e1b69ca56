/**
 * Forwards data-plane requests to replicas: status and headers are kept (minus hop-by-hop headers),
 * bodies of any size stream both ways, connections to replicas are pooled and kept alive
 * (connectionPool.ts).
 *
 * The client side is a small HTTP/1.1 client of our own over net sockets (a Unix domain socket or a
 * 127.0.0.1 TCP port) instead of node:http's: on this path node:http's client costs more CPU than
 * everything else the gateway does per request (bench/gateway-overhead.ts). A small body (a
 * content-length up to SMALL_BODY_BYTES, i.e. every batch-1 inference) is read whole and sent as one
 * write of head + body; a small response is collected and answered with one `end(buffer)`. Larger or
 * chunked bodies stream, with backpressure, as before. Only what a replica (node's http server) sends
 * needs to be understood (responseHead.ts): content-length, chunked or close-delimited bodies, 1xx
 * interim responses.
 */
import type * as http from 'node:http';
import type { Connection, PooledExchange, ReplicaAddress, ReplicaClient, ReplicaPool } from './connectionPool';
import { HOP_BY_HOP, MAX_HEAD_BYTES, parseResponseHead, type ResponseHead } from './responseHead';

export { type ReplicaAddress, ReplicaClient, type ReplicaClientOptions } from './connectionPool';

/** Called once per proxied request: the replica's status (undefined if none came) and what failed. */
export type ProxyDone = (status: number | undefined, error: Error | undefined) => void;

/**
 * Request headers not passed on: hop-by-hop, the body framing (set anew), Expect (the gateway's server
 * answered it), and Authorization: the caller's Ferry key is the gateway's to check, and a replica (which
 * may run a user's image) never sees it.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  ...HOP_BY_HOP,
  'content-length',
  'expect',
  'x-forwarded-for',
  'authorization',
]);

/** Bodies up to this size are read whole and sent in one write; larger ones stream. */
export const SMALL_BODY_BYTES = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');

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
class Exchange implements PooledExchange {
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
    private readonly pool: ReplicaPool,
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
    if (this.settled) {
      conn.finish(true);
      return;
    }
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
            if (this.line.length > MAX_HEAD_BYTES) this.fail(new Error('malformed chunked response from the replica'));
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
          if (Number.isNaN(size)) {
            this.fail(new Error('malformed chunked response from the replica'));
            return;
          }
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

  /** Reads the status line and headers; returns the bytes after them. */
  private readHead(chunk: Buffer): Buffer {
    let data = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    const end = data.indexOf(CRLF2);
    if (end === -1) {
      if (data.length > MAX_HEAD_BYTES) this.fail(new Error('the replica sent a response head larger than 64 KiB'));
      else this.head = data;
      return EMPTY;
    }
    this.head = undefined;
    let head: ResponseHead;
    try {
      head = parseResponseHead(data.toString('latin1', 0, end), this.extraHeaders);
    } catch (err) {
      this.fail(err as Error);
      return EMPTY;
    }
    data = data.subarray(end + 4);
    if (head.interim) return data; // the final response follows
    const { status, headers, contentLength } = head;
    if (!head.keepAlive) this.keepAlive = false;
    this.status = status;
    this.responseHeaders = headers;

    if (this.noBodyExpected || status === 204 || status === 304 || status === 101) {
      this.state = Body.Done;
      this.writeHead(true);
      this.complete(data.length === 0);
      return EMPTY;
    }
    if (head.chunked) {
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
        this.fail(err as Error);
        return;
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
