/**
 * Ferry's gateway: the `local` deployment target in one long-lived process (kubelet + ingress for
 * one machine). It runs replicas as processes, routes `/d/{id}/...` to them round-robin, holds
 * requests while a hibernated deployment wakes, and keeps its state in `<stateDir>/gateway/`.
 * Replicas outlive the gateway; a restarted gateway adopts them.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleControlRequest, sendJson } from './controlApi';
import { DeploymentManager, type PullImageFn } from './deploymentManager';
import type { LocalDeployment } from './localDeployment';
import { createReplicaAgent, proxyToReplica } from './proxy';
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
  const agent = createReplicaAgent();
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
    if (path === '/_ferry' || path.startsWith('/_ferry/')) {
      void handleControlRequest(manager, req, res, path, q === -1 ? '' : rawUrl.slice(q + 1));
      return;
    }
    sendJson(res, 404, { error: `no route for ${path}: deployments are served under /d/{id}/, the control API under /_ferry/` });
  });

  async function serveDeploymentRequest(m: DeploymentManager, req: http.IncomingMessage, res: http.ServerResponse, rawUrl: string): Promise<void> {
    // /d/{id}[/rest][?query] → /rest?query on a replica
    const slash = rawUrl.indexOf('/', 3);
    const query = rawUrl.indexOf('?', 3);
    const idEnd = [slash, query, rawUrl.length].filter((i) => i !== -1).reduce((a, b) => Math.min(a, b));
    let id: string;
    try {
      id = decodeURIComponent(rawUrl.slice(3, idEnd));
    } catch {
      return sendJson(res, 400, { error: 'malformed deployment id in URL' });
    }
    const upstreamPath = rawUrl.slice(idEnd).startsWith('/') ? rawUrl.slice(idEnd) : `/${rawUrl.slice(idEnd)}`;
    const deployment = m.get(id);
    if (!deployment) return sendJson(res, 404, { error: `no deployment "${id}" on this gateway` });
    deployment.record.lastRequestAt = new Date().toISOString();

    let replica = deployment.pickReplica();
    if (!replica) {
      const held = await holdUntilServing(deployment);
      if (held !== 'ready') {
        return sendJson(res, 503, { error: held }, { 'retry-after': String(Math.min(5, Math.max(1, Math.ceil(holdTimeoutMs / 1000)))) });
      }
      replica = deployment.pickReplica();
      if (!replica) return sendJson(res, 503, { error: `deployment "${id}" has no ready replica` }, { 'retry-after': '1' });
    }
    const outcome = await proxyToReplica(agent, req, res, replica.port, upstreamPath, { 'x-ferry-replica': String(replica.pid) });
    if (outcome.status !== undefined) deployment.record.requestsServed++;
    m.persistSoon();
  }

  /** 'ready', or why the request cannot be held any longer. */
  async function holdUntilServing(deployment: LocalDeployment): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`deployment "${deployment.id}" is waking up and was not ready within ${holdTimeoutMs} ms; retry shortly`),
        holdTimeoutMs,
      );
    });
    const woke = deployment.ensureServing(true).then(
      () => 'ready',
      (err: Error) => `deployment "${deployment.id}" could not be woken: ${err.message}`,
    );
    try {
      return await Promise.race([woke, timedOut]);
    } finally {
      clearTimeout(timer);
    }
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
        agent.destroy();
        await serverClosed;
        lock.release();
      })();
      return closed;
    },
  };
}
