/**
 * Ferry's gateway: the `local` deployment target in one long-lived process (kubelet + ingress +
 * activator + autoscaler for one machine). It runs replicas as processes, routes `/d/{id}/...` to a
 * revision (traffic split, header rules) and within it to the replica with the fewest requests in
 * flight, holds requests while a revision has no ready replica (waking from zero, scaling up),
 * autoscales on concurrency, scales idle deployments to zero, and keeps its state in
 * `<stateDir>/gateway/`. Replicas outlive the gateway; a restarted gateway adopts them.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { holdForReplica } from './activator';
import { handleControlRequest, sendGatewayMetrics, sendJson } from './controlApi';
import { DeploymentManager, type PullImageFn } from './deploymentManager';
import type { LocalDeployment } from './localDeployment';
import { proxyToReplica, ReplicaClient } from './proxy';
import type { Replica } from './replicaProcess';
import type { RevisionSet } from './revisionSet';
import { acquireStateDirLock } from './stateDirLock';

export interface GatewayOptions {
  port: number;
  host?: string;
  stateDir: string;
  /** How images are fetched; default lib/oci's pullImage. */
  pullImage?: PullImageFn;
  /** How long a request may be held while a hibernated deployment wakes, then 503. Default 30 s. */
  holdTimeoutMs?: number;
  /** How long a replica may take to answer /v2/health/ready. Default 60 s. */
  readyTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace when stopping a replica. Default 30 s (the server drains in-flight requests). */
  stopGraceMs?: number;
  /**
   * How long a replica taken out of routing (scale-down, replacement, hibernate) may take to finish the
   * requests it holds before it is sent SIGTERM. Default 30 s.
   */
  drainTimeoutMs?: number;
  /** How often autoscalers decide and idle deployments are checked. Default 200 ms. */
  autoscaleTickMs?: number;
  /**
   * Keep one pre-started node process that the next replica start becomes (a faster cold start: node
   * is already booted and the server bundle's compiled code is cached). Default true.
   */
  standby?: boolean;
  /** Base URL put in endpoints; default the address the gateway listens on. */
  publicUrl?: string;
  log?: (message: string) => void;
}

export interface Gateway {
  url: string;
  /**
   * Stops the gateway. Replicas keep running (recorded in the state file, adopted by the next
   * gateway) unless `stopReplicas`, which stops them and leaves every deployment hibernated.
   */
  close(opts?: { stopReplicas?: boolean }): Promise<void>;
}

const defaultPullImage: PullImageFn = async (ref, destDir) => (await import('../oci/pull')).pullImage(ref, destDir);

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const host = opts.host ?? '127.0.0.1';
  const holdTimeoutMs = opts.holdTimeoutMs ?? 30_000;
  const log = opts.log ?? ((m: string) => process.stdout.write(`${new Date().toISOString()} gateway: ${m}\n`));
  const client = new ReplicaClient();
  let manager: DeploymentManager | undefined;

  const server = http.createServer((req, res) => {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    if (!manager) return sendJson(res, 503, { error: 'gateway is starting' }, { 'retry-after': '1' });
    if (path.startsWith('/d/')) {
      void serveDeploymentRequest(manager, req, res, rawUrl);
      return;
    }
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) return sendGatewayMetrics(manager, res);
    if (path === '/_ferry' || path.startsWith('/_ferry/')) {
      void handleControlRequest(manager, req, res, path, q === -1 ? '' : rawUrl.slice(q + 1));
      return;
    }
    sendJson(res, 404, {
      error: `no route for ${path}: deployments are served under /d/{id}/, the control API under /_ferry/`,
    });
  });

  /** `/d/{id}[/rest][?query]` → `/rest?query` on a replica of the deployment. Synchronous unless held. */
  function serveDeploymentRequest(
    m: DeploymentManager,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    rawUrl: string,
  ): void {
    let idEnd = 3;
    for (; idEnd < rawUrl.length; idEnd++) {
      const c = rawUrl.charCodeAt(idEnd);
      if (c === 47 /* / */ || c === 63 /* ? */) break;
    }
    let id = rawUrl.slice(3, idEnd);
    if (id.includes('%')) {
      try {
        id = decodeURIComponent(id);
      } catch {
        sendJson(res, 400, { error: 'malformed deployment id in URL' });
        return;
      }
    }
    const upstreamPath =
      idEnd === rawUrl.length ? '/' : rawUrl.charCodeAt(idEnd) === 47 ? rawUrl.slice(idEnd) : `/${rawUrl.slice(idEnd)}`;
    const deployment = m.get(id);
    if (!deployment) {
      sendJson(res, 404, { error: `no deployment "${id}" on this gateway` });
      return;
    }
    const started = performance.now();
    const revision = deployment.route(req.headers);
    deployment.touch();
    const replica = revision.pick();
    if (replica) forward(m, deployment, revision, replica, req, res, upstreamPath, started);
    else void holdThenForward(m, deployment, revision, req, res, upstreamPath, started);
  }

  /** No ready replica in the revision: hold the request until there is one (or answer 503). */
  async function holdThenForward(
    m: DeploymentManager,
    deployment: LocalDeployment,
    revision: RevisionSet,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    upstreamPath: string,
    started: number,
  ): Promise<void> {
    const clientGone = new Promise<void>((resolve) => res.once('close', resolve));
    const held = await holdForReplica(deployment, revision, holdTimeoutMs, clientGone, m.metrics);
    if ('reason' in held) {
      if (held.reason === 'client_gone') return;
      m.metrics.unavailable.labels(deployment.id, held.reason).inc();
      m.metrics.requests.labels(deployment.id, revision.name, '503').inc();
      const retryAfter = Math.min(5, Math.max(1, Math.ceil(holdTimeoutMs / 1000)));
      return sendJson(
        res,
        503,
        {
          error: held.message,
          deployment: deployment.id,
          revision: revision.name,
          state: deployment.state,
          retryAfterSeconds: retryAfter,
        },
        { 'retry-after': String(retryAfter), 'x-ferry-revision': revision.name },
      );
    }
    forward(m, deployment, held.set, held.replica, req, res, upstreamPath, started);
  }

  /** Sends the request to `replica` (already counted in flight by pick) and does the bookkeeping when it is over. */
  function forward(
    m: DeploymentManager,
    deployment: LocalDeployment,
    revision: RevisionSet,
    replica: Replica,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    upstreamPath: string,
    started: number,
  ): void {
    proxyToReplica(client, req, res, replica.address, upstreamPath, replica.responseHeaders, (status) => {
      revision.release(replica);
      deployment.touch();
      if (status !== undefined) deployment.record.requestsServed++;
      m.metrics.route(deployment.id, revision).record(status ?? 502, (performance.now() - started) / 1000);
      m.persistSoon();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let lock: { release(): void };
  let m: DeploymentManager;
  try {
    m = new DeploymentManager({
      stateDir: opts.stateDir,
      gatewayUrl: opts.publicUrl ?? url,
      pullImage: opts.pullImage ?? defaultPullImage,
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
      stopGraceMs: opts.stopGraceMs ?? 30_000,
      drainTimeoutMs: opts.drainTimeoutMs ?? 30_000,
      autoscaleTickMs: opts.autoscaleTickMs ?? 200,
      standby: opts.standby ?? true,
      log,
    });
    lock = acquireStateDirLock(opts.stateDir);
  } catch (err) {
    server.close();
    throw err;
  }
  try {
    await m.restore();
  } catch (err) {
    lock.release();
    server.close();
    throw err;
  }
  manager = m;
  log(`listening on ${url}, state in ${opts.stateDir}`);

  let closed: Promise<void> | undefined;
  return {
    url,
    close(closeOpts) {
      closed ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await m.close(closeOpts?.stopReplicas ?? false);
        server.closeAllConnections();
        client.destroy();
        await serverClosed;
        lock.release();
      })();
      return closed;
    },
  };
}
