/**
 * A small stand-in for the EC2 instance metadata service on 127.0.0.1 (a free port): a real HTTP server
 * that implements IMDSv2's session tokens (PUT /latest/api/token with a TTL header; reads without a
 * valid, unexpired token get 401, as IMDSv2-only instances answer) and the paths the replica agent reads.
 * The test decides when EC2 "announces" an interruption or recommends a rebalance.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MetadataStandIn {
  url: string;
  /** Requests seen, e.g. "PUT /latest/api/token", "GET /latest/meta-data/spot/instance-action 401". */
  log: string[];
  /** From now on spot/instance-action answers {"action", "time"} (default: terminate in two minutes). */
  announceInterruption(action?: string, inMs?: number): void;
  recommendRebalance(): void;
  /** Every token issued so far stops being valid (as if its TTL passed). */
  expireTokens(): void;
  close(): Promise<void>;
}

export async function startMetadataStandIn(
  identity = { instanceId: 'i-0standin0000000001', zone: 'us-east-1b' },
): Promise<MetadataStandIn> {
  const tokens = new Map<string, number>();
  const log: string[] = [];
  let instanceAction: string | undefined;
  let rebalance: string | undefined;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const answer = (status: number, body = '') => {
      log.push(`${req.method} ${path} ${status}`);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    };
    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return answer(405);
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return answer(400);
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, Date.now() + ttl * 1000);
      return answer(200, token);
    }
    if (req.method !== 'GET') return answer(405);
    const token = String(req.headers['x-aws-ec2-metadata-token'] ?? '');
    if ((tokens.get(token) ?? 0) < Date.now()) return answer(401);
    switch (path) {
      case '/latest/meta-data/instance-id':
        return answer(200, identity.instanceId);
      case '/latest/meta-data/placement/availability-zone':
        return answer(200, identity.zone);
      case '/latest/meta-data/spot/instance-action':
        return instanceAction ? answer(200, instanceAction) : answer(404);
      case '/latest/meta-data/events/recommendations/rebalance':
        return rebalance ? answer(200, rebalance) : answer(404);
      default:
        return answer(404);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const isoSeconds = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    announceInterruption(action = 'terminate', inMs = 120_000) {
      instanceAction = JSON.stringify({ action, time: isoSeconds(Date.now() + inMs) });
    },
    recommendRebalance() {
      rebalance = JSON.stringify({ noticeTime: isoSeconds(Date.now()) });
    },
    expireTokens() {
      for (const t of tokens.keys()) tokens.set(t, 0);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
