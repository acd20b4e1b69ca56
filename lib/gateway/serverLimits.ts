/**
 * What the gateway's HTTP server allows its clients, so slow, stalled or too many clients cannot take
 * it over: a cap on open connections (more are closed at once, counted in the log), and timeouts for
 * each way a client can hold a connection without progress. Node enforces them; this module is the one
 * place they are chosen (defaults here, settings in lib/config.ts `gateway.limits`).
 */
import type * as http from 'node:http';

export interface GatewayServerLimits {
  /** Open client connections at most; a connection beyond it is closed as soon as it is accepted. */
  maxConnections: number;
  /** A connection must have sent a whole request head this soon after it opened (or its last request): else 408. */
  headersTimeoutMs: number;
  /** ...and its whole request (body included) this soon: else 408. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long without a new request. */
  keepAliveTimeoutMs: number;
  /**
   * A connection with no traffic either way for this long is closed (a client that stopped reading its
   * response, say). Longer than a request may be held while a deployment wakes.
   */
  idleTimeoutMs: number;
}

export const DEFAULT_GATEWAY_SERVER_LIMITS: GatewayServerLimits = {
  // Well under the default fd limit (each proxied request may take a replica connection too).
  maxConnections: 8192,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
};

/** The options node:http takes at creation: how often it checks the timeouts above. */
export function serverOptionsFor(limits: GatewayServerLimits): http.ServerOptions {
  const shortest = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return { connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(shortest / 4))) };
}

/** Sets the limits on `server`; `log` hears about connections refused at the cap (once per burst). */
export function applyServerLimits(
  server: http.Server,
  limits: GatewayServerLimits,
  log: (message: string) => void,
): void {
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = limits.headersTimeoutMs;
  // node requires requestTimeout ≥ headersTimeout (0 would mean none).
  server.requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.timeout = limits.idleTimeoutMs;
  let dropped = 0;
  server.on('drop', () => {
    if (dropped++ === 0)
      setTimeout(() => {
        log(`${dropped} connection(s) refused: at the cap of ${limits.maxConnections} open connections`);
        dropped = 0;
      }, 1000).unref();
  });
}
