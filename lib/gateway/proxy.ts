/**
 * Forwards one data-plane request to a replica: bodies stream both ways, status and headers are kept
 * (minus hop-by-hop headers), connections to replicas are pooled.
 */
import * as http from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * One per gateway: pooled keep-alive connections to its replicas. Idle sockets are dropped after
 * 30 s, before the replica's own 65 s keep-alive timeout, so a reused socket is never half-closed.
 */
export function createReplicaAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: 30_000 });
}

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const connectionTokens = (headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim());
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || connectionTokens.includes(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

export interface ProxyOutcome {
  /** Status the replica answered with, or undefined if it could not be reached. */
  status?: number;
  error?: Error;
}

/**
 * Sends `req` to the replica at 127.0.0.1:`port` with path `upstreamPath` and pipes the answer to `res`.
 * Resolves when the exchange is over; never rejects (a failure before any response is a 502 JSON error).
 */
export function proxyToReplica(
  agent: http.Agent,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  port: number,
  upstreamPath: string,
  extraResponseHeaders: http.OutgoingHttpHeaders,
): Promise<ProxyOutcome> {
  return new Promise((resolve) => {
    const headers = forwardable(req.headers);
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: upstreamPath, headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, { ...forwardable(upRes.headers), ...extraResponseHeaders });
      upRes.pipe(res);
      upRes.on('end', () => resolve({ status: upRes.statusCode }));
      upRes.on('error', (error) => {
        res.destroy(error);
        resolve({ status: upRes.statusCode, error });
      });
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) {
        const body = JSON.stringify({ error: `replica on port ${port} failed: ${error.message}` });
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.destroy(error);
      }
      resolve({ error });
    });
    // The client gave up: stop the upstream exchange too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
}
