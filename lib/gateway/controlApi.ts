/**
 * The gateway's control API under /_ferry (JSON):
 *   GET    /_ferry/health                        → {"ok": true}
 *   GET    /_ferry/metrics  (also GET /metrics)  → the gateway's own Prometheus metrics (lib/gateway/gatewayMetrics.ts)
 *   GET    /_ferry/deployments                   → {"deployments": [status...]}
 *   PUT    /_ferry/deployments/{id}              body: a DeploymentSpec without id (lib/targets/deploymentTarget.ts):
 *            {model, replicas, image | modelDir}  or  {model, replicas?, revisions: [{name, image | modelDir, replicas?}],
 *            traffic?: {split?: {rev: percent}, rules?: [{header, value, revision}]}, autoscaling?: {...},
 *            scaleToZeroAfterMs?} → status (200)
 *   PUT    /_ferry/deployments/{id}/traffic      body {split?, rules?} → status; no replica restarts
 *          (both PUTs above: with `If-Match: "<specVersion>"` from a status, 409 if the spec changed since)
 *   PUT    /_ferry/deployments/{id}/scaling      body {replicas?, autoscaling?: {...} | null, scaleToZeroAfterMs?: ms | null}
 *            → status; fields left out keep their values, autoscaling is merged over the current settings;
 *            no replica restarts, a hibernated deployment stays hibernated
 *   GET    /_ferry/deployments/{id}              → status, or 404
 *   DELETE /_ferry/deployments/{id}              → 204, whether or not it existed (idempotent)
 *   POST   /_ferry/deployments/{id}/hibernate    → status
 *   POST   /_ferry/deployments/{id}/wake         → status once a replica is ready
 *   GET    /_ferry/deployments/{id}/metrics      → Prometheus text of all live replicas (labels replica="<pid>", revision)
 *          ...?format=json                       → {"id", "replicas": [{pid, port, revision, metricsText}]}
 * Errors are {"error": "...", "code": "..."}: 400 bad_request (bad spec or body), 404 deployment_not_found or
 * no_route, 405 method_not_allowed, 409 spec_changed, 500 internal (could not run it, with the log tail);
 * lib/gateway/controlErrors.ts maps each error to its status and code.
 */
import type * as http from 'node:http';
import { ControlRequestError, errorAnswer, MethodNotAllowed } from './controlErrors';
import type { DeploymentManager } from './deploymentManager';
import { fetchReplicaMetrics, mergeReplicaMetrics } from './replicaMetrics';

export async function handleControlRequest(
  manager: DeploymentManager,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  query: string,
): Promise<void> {
  const parts = path.split('/').slice(2); // after '', '_ferry'
  const method = req.method ?? 'GET';
  try {
    if (parts[0] === 'health' && parts.length === 1) return sendJson(res, 200, { ok: true });
    if (parts[0] === 'metrics' && parts.length === 1) {
      allow(method, ['GET'], path);
      return sendGatewayMetrics(manager, res);
    }
    if (parts[0] !== 'deployments') throw new ControlRequestError('no_route', `no control route ${method} ${path}`);
    if (parts.length === 1 || (parts.length === 2 && parts[1] === '')) {
      allow(method, ['GET'], path);
      return sendJson(res, 200, { deployments: manager.list() });
    }
    const id = decodeURIComponent(parts[1]);
    if (parts.length === 2) {
      if (method === 'PUT') return sendJson(res, 200, await manager.apply(id, await readJson(req), ifMatchOf(req)));
      if (method === 'DELETE') {
        await manager.destroy(id);
        res.writeHead(204).end();
        return;
      }
      allow(method, ['GET', 'PUT', 'DELETE'], path);
      const d = manager.get(id);
      if (!d) throw new ControlRequestError('deployment_not_found', `no deployment "${id}"`);
      return sendJson(res, 200, d.status());
    }
    if (parts.length === 3 && parts[2] === 'traffic') {
      allow(method, ['PUT'], path);
      return sendJson(res, 200, await manager.setTraffic(id, await readJson(req), ifMatchOf(req)));
    }
    if (parts.length === 3 && parts[2] === 'scaling') {
      allow(method, ['PUT'], path);
      return sendJson(res, 200, await manager.setScaling(id, await readJson(req)));
    }
    if (parts.length === 3 && parts[2] === 'hibernate') {
      allow(method, ['POST'], path);
      return sendJson(res, 200, await manager.hibernate(id));
    }
    if (parts.length === 3 && parts[2] === 'wake') {
      allow(method, ['POST'], path);
      return sendJson(res, 200, await manager.wake(id));
    }
    if (parts.length === 3 && parts[2] === 'metrics') {
      allow(method, ['GET'], path);
      return await sendMetrics(manager, id, new URLSearchParams(query).get('format') === 'json', res);
    }
    throw new ControlRequestError('no_route', `no control route ${method} ${path}`);
  } catch (err) {
    const answer = errorAnswer(err);
    sendJson(res, answer.status, answer.body, answer.headers);
  }
}

/** The If-Match header's version (quotes and a weak prefix dropped); undefined when absent or `*`. */
function ifMatchOf(req: http.IncomingMessage): string | undefined {
  const raw = req.headers['if-match'];
  if (typeof raw !== 'string' || raw.trim() === '*') return undefined;
  return raw
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

function allow(method: string, allowed: string[], path: string): void {
  if (!allowed.includes(method))
    throw new MethodNotAllowed(allowed, `${method} is not allowed on ${path} (use ${allowed.join(' or ')})`);
}

async function sendMetrics(
  manager: DeploymentManager,
  id: string,
  asJson: boolean,
  res: http.ServerResponse,
): Promise<void> {
  const d = manager.get(id);
  if (!d) throw new ControlRequestError('deployment_not_found', `no deployment "${id}"`);
  const replicas = await Promise.all(
    d.replicas
      .filter((r) => r.routable)
      .map(async (r) => {
        try {
          // On the replica's socket (or port): replicas the gateway starts listen on a Unix domain socket.
          return { pid: r.pid, port: r.port, revision: r.revision, metricsText: await fetchReplicaMetrics(r.address) };
        } catch (err) {
          return { pid: r.pid, port: r.port, revision: r.revision, metricsText: '', error: (err as Error).message };
        }
      }),
  );
  if (asJson) return sendJson(res, 200, { id, replicas });
  const text = mergeReplicaMetrics(replicas);
  res.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendGatewayMetrics(manager: DeploymentManager, res: http.ServerResponse): void {
  const text = manager.metrics.render();
  res.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers?: http.OutgoingHttpHeaders,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readJson(req: http.IncomingMessage, maxBytes = 1 << 20): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= maxBytes) chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > maxBytes)
        return reject(new ControlRequestError('bad_request', `body is larger than ${maxBytes} bytes`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(new ControlRequestError('bad_request', `malformed JSON body: ${(err as Error).message}`));
      }
    });
  });
}
