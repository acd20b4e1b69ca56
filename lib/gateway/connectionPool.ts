/**
 * The gateway's keep-alive connections to its replicas (net sockets: a Unix domain socket or a
 * 127.0.0.1 TCP port): a pool per replica, at most `maxConnections` each (more requests wait for a free
 * one), idle ones closed after `idleTimeoutMs`. A connection runs one exchange (proxy.ts) at a time and
 * hands it the socket's events.
 */
import * as net from 'node:net';

/** Where a replica listens: a Unix domain socket, or else a TCP port on 127.0.0.1 (or on `host`, a pod's IP). */
export interface ReplicaAddress {
  readonly socketPath?: string;
  readonly host?: string;
  readonly port: number;
}

/** One request and its response over a pooled connection (proxy.ts's Exchange). */
export interface PooledExchange {
  /** The connection is this exchange's now: send the request. */
  attach(conn: Connection): void;
  fail(err: Error): void;
  onResponseData(chunk: Buffer): void;
  /** The replica ended its side of the connection. */
  onResponseEnd(): void;
  /** The socket can take more of the request body. */
  onUpstreamDrain(): void;
}

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

function poolKey(a: ReplicaAddress): string | number {
  return a.socketPath ?? (a.host ? `${a.host}:${a.port}` : a.port);
}

/** One per gateway: the connection pools to its replicas. */
export class ReplicaClient {
  readonly maxConnections: number;
  readonly maxIdle: number;
  readonly idleTimeoutMs: number;
  private readonly pools = new Map<string | number, ReplicaPool>();
  private sweeper: NodeJS.Timeout | undefined;
  private destroyed = false;

  constructor(opts: ReplicaClientOptions = {}) {
    this.maxConnections = opts.maxConnections ?? 256;
    this.maxIdle = opts.maxIdle ?? 64;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  }

  pool(address: ReplicaAddress): ReplicaPool {
    const key = poolKey(address);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new ReplicaPool(this, address);
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** A pool with no connection and nobody waiting is dropped (its replica may be gone for good). */
  forget(pool: ReplicaPool): void {
    const key = poolKey(pool.address);
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
export class ReplicaPool {
  readonly idle: Connection[] = [];
  /** Connections open (idle or busy) or connecting. */
  open = 0;
  private readonly waiting: PooledExchange[] = [];

  constructor(
    readonly client: ReplicaClient,
    readonly address: ReplicaAddress,
  ) {}

  /** Gives `ex` a connection now, or when one is free. */
  acquire(ex: PooledExchange): void {
    const conn = this.idle.pop();
    if (conn) {
      conn.assign(ex);
    } else if (this.open < this.client.maxConnections) {
      this.open++;
      new Connection(this).assign(ex);
    } else {
      this.waiting.push(ex);
    }
  }

  /** A request waiting for a connection was abandoned. */
  cancel(ex: PooledExchange): void {
    const i = this.waiting.indexOf(ex);
    if (i !== -1) this.waiting.splice(i, 1);
  }

  release(conn: Connection): void {
    const next = this.waiting.shift();
    if (next) {
      conn.assign(next);
    } else if (this.idle.length >= this.client.maxIdle) {
      conn.destroy();
    } else {
      conn.idleSince = Date.now();
      this.idle.push(conn);
      this.client.keepingIdle();
    }
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
export class Connection {
  readonly socket: net.Socket;
  exchange: PooledExchange | undefined;
  idleSince = 0;
  private closed = false;

  constructor(readonly pool: ReplicaPool) {
    const { socketPath, port, host } = pool.address;
    this.socket = socketPath ? net.connect(socketPath) : net.connect(port, host ?? '127.0.0.1');
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

  assign(ex: PooledExchange): void {
    if (this.closed) {
      ex.fail(new Error('the replica closed the connection'));
      return;
    }
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
