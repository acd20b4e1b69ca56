/**
 * Starts Ferry's HTTP API and dashboard (client/api/app.ts) with its socket-level limits: header and idle
 * timeouts against slow clients, a connection cap, and TLS when a certificate and key are configured.
 * Auth may be off only when the API listens on loopback.
 */
import { readFileSync } from 'node:fs';
import { AuditLog } from '../../lib/auth/audit';
import { CachedKeyVerifier, KeyStore } from '../../lib/auth/keyStore';
import { ModelOwnership } from '../../lib/auth/modelOwnership';
import type { FerryConfig } from '../../lib/config';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { FerryClient } from '../sdk';
import { buildApiApp } from './app';

export const API_SOCKET_LIMITS = {
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  /** A whole request (a model upload included) must arrive within this. */
  requestTimeoutMs: 30 * 60_000,
  /** A socket with no bytes moving for this long is closed. */
  idleTimeoutMs: 60_000,
  maxConnections: 1024,
};

export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\./.test(host);
}

export async function startApiServer(
  config: FerryConfig,
  port = config.api.port,
): Promise<{ url: string; close(): Promise<void> }> {
  const { access } = config;
  if (!access.auth && !isLoopback(config.api.host)) {
    throw new Error(
      `refusing to serve the API on ${config.api.host} with auth off: auth is required off loopback (unset FERRY_AUTH=off)`,
    );
  }
  const pool = getPool(config.postgres.url);
  const keys = new KeyStore(pool);
  const repo = new FerryRepository(pool);
  const ferry = await FerryClient.connect(config);
  const verifier = new CachedKeyVerifier((k) => keys.verify(k), 5_000);
  const tls = access.tls
    ? { cert: readFileSync(access.tls.certFile), key: readFileSync(access.tls.keyFile) }
    : undefined;

  const scheme = tls ? 'https' : 'http';
  const app = await buildApiApp(
    {
      config,
      ferry,
      keys,
      audit: new AuditLog(pool),
      ownership: new ModelOwnership(pool),
      auth: access.auth,
      verifyKey: (k) => verifier.verify(k),
      rateLimit: access.rateLimit,
      chatopsSecret: access.chatopsSecret,
      maxModelBytes: access.maxModelBytes,
      allowedOrigins: [
        ...new Set([new URL(config.api.url).origin, `${scheme}://127.0.0.1:${port}`, `${scheme}://localhost:${port}`]),
      ],
      deploymentView: (id) => deploymentView(ferry, repo, id),
    },
    tls,
  );
  const server = app.server;
  server.headersTimeout = API_SOCKET_LIMITS.headersTimeoutMs;
  server.keepAliveTimeout = API_SOCKET_LIMITS.keepAliveTimeoutMs;
  server.requestTimeout = API_SOCKET_LIMITS.requestTimeoutMs;
  server.timeout = API_SOCKET_LIMITS.idleTimeoutMs;
  server.maxConnections = API_SOCKET_LIMITS.maxConnections;
  await app.listen({ port, host: config.api.host });
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    close: async () => {
      await app.close();
      await ferry.close();
    },
  };
}

async function deploymentView(ferry: FerryClient, repo: FerryRepository, ref: string) {
  const status = await ferry.status(ref);
  const [serving, row, metrics, gateway] = await Promise.all([
    ferry.serving(ref).catch(() => undefined),
    repo.getDeployment(status.deploymentId),
    repo.recentMetrics(status.deploymentId, 240),
    // Revisions, traffic split, replicas and autoscaler right now; absent before the deploy stage or when
    // the gateway is down (the rest of the page still renders).
    status.inferUrl ? ferry.gatewayStatus(status.deploymentId).catch(() => undefined) : undefined,
  ]);
  return {
    status,
    serving,
    gateway,
    deployment: row,
    metrics: metrics.reverse(),
    temporalUiUrl: ferry.temporalUiUrl(`deploy:${status.model}:${status.version}`),
  };
}
