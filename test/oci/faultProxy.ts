/**
 * A small HTTP proxy in front of a real registry that injects real network faults, each once, into the
 * requests that match: answer 503 itself, drop the connection before forwarding, drop it halfway
 * through forwarding a request body, or vanish (close its port, so later connections are refused).
 *
 * The Host header goes upstream as it came, so the registry's Location headers point back at the proxy.
 * Every request is recorded with the body bytes that reached the registry.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultAction = 'status-503' | 'drop-before-forwarding' | 'drop-mid-body' | 'vanish';

export interface Fault {
  method: string;
  /** Only requests whose path contains this. */
  pathIncludes?: string;
  /** The nth matching request (1 = the first) gets the fault. */
  nth: number;
  action: FaultAction;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** Body bytes forwarded to the registry. */
  forwardedBytes: number;
  /** The registry's status, when its answer was relayed. */
  status?: number;
  fault?: FaultAction;
}

export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  private faults: Array<Fault & { seen: number; used: boolean }> = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: URL,
    readonly url: string,
  ) {}

  static async start(upstreamUrl: string): Promise<FaultProxy> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new FaultProxy(
      server,
      new URL(upstreamUrl),
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
    server.on('connection', (socket) => {
      proxy.sockets.add(socket);
      socket.once('close', () => proxy.sockets.delete(socket));
    });
    server.on('request', (req, res) => proxy.handle(req, res));
    return proxy;
  }

  /** Replaces the pending faults (and forgets the recorded requests). */
  inject(...faults: Fault[]): void {
    this.faults = faults.map((f) => ({ ...f, seen: 0, used: false }));
    this.requests.length = 0;
  }

  /** Body bytes forwarded by requests of `method`. */
  forwardedBytes(method: string): number {
    return this.requests.filter((r) => r.method === method).reduce((sum, r) => sum + r.forwardedBytes, 0);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private faultFor(req: http.IncomingMessage): FaultAction | undefined {
    for (const fault of this.faults) {
      if (fault.used || fault.method !== req.method) continue;
      if (fault.pathIncludes && !req.url?.includes(fault.pathIncludes)) continue;
      fault.seen++;
      if (fault.seen === fault.nth) {
        fault.used = true;
        return fault.action;
      }
    }
    return undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const record: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', forwardedBytes: 0 };
    this.requests.push(record);
    const fault = this.faultFor(req);
    if (fault) record.fault = fault;
    if (fault === 'status-503') {
      req.resume();
      req.once('end', () => {
        res.writeHead(503, { 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}');
      });
      return;
    }
    if (fault === 'drop-before-forwarding') {
      req.socket.destroy();
      return;
    }
    if (fault === 'vanish') {
      req.socket.destroy();
      void this.stop();
      return;
    }

    const upstreamReq = http.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: false,
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode;
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', () => req.socket.destroy());
    const dropAt =
      fault === 'drop-mid-body' ? Math.floor(Number(req.headers['content-length'] ?? 0) / 2) : Number.POSITIVE_INFINITY;
    req.on('data', (chunk: Buffer) => {
      if (record.forwardedBytes >= dropAt) return;
      const room = dropAt - record.forwardedBytes;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      record.forwardedBytes += part.length;
      upstreamReq.write(part);
      if (record.forwardedBytes >= dropAt) {
        // Both connections cut once half the body went through: the registry holds part of a chunk.
        setTimeout(() => {
          upstreamReq.destroy();
          req.socket.destroy();
        }, 50);
      }
    });
    req.on('end', () => {
      if (record.forwardedBytes < dropAt) upstreamReq.end();
    });
  }
}
