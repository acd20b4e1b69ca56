/**
 * Ferry's gateway: the `local` deployment target in one long-lived process (kubelet + ingress +
 * activator + autoscaler for one machine). It runs replicas as processes, routes `/d/{id}/...` to a
 * revision (traffic split, header rules) and within it to the replica with the fewest requests in
 * flight, holds requests while a revision has no ready replica (waking from zero, scaling up),
 * autoscales on concurrency, scales idle deployments to zero, and keeps its state in
 * `<stateDir>/gateway/`. Replicas outlive the gateway; a restarted gateway adopts them.
 *
 * One server on one port: `/d/{id}/…` (inference) takes the hand-tuned path below, everything else goes
 * to the control API's fastify app (controlApi.ts) through its router. With auth on, inference needs a
 * key with `infer` on the deployment's project unless the deployment is public (gatewayAccess.ts).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../auth/principal';
import { loadConfig } from '../config';
import { holdForReplica } from './activator';
import { buildControlApp, type ControlRoute } from './controlApi';
import { errorAnswer } from './controlErrors';
import { DeploymentManager, type PullImageFn } from './deploymentManager';
import { AUTH_CHALLENGE, GatewayAccess, type GatewayAccessOptions } from './gatewayAccess';
import type { LocalDeployment } from './localDeployment';
import { proxyToReplica, ReplicaClient } from './proxy';
import type { RemoteDeployment } from './remoteDeployment';
import type { Replica } from './replicaProcess';
import type { RevisionSet } from './revisionSet';
import {
  applyServerLimits,
  DEFAULT_GATEWAY_SERVER_LIMITS,
  type GatewayServerLimits,
  serverOptionsFor,
} from './serverLimits';
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
  /** Keys and scopes on the control API and inference (gatewayAccess.ts). Default: auth off (loopback only). */
  access?: GatewayAccessOptions;
  /**
   * Registries images may be pulled from (base URLs); a spec naming another is refused with 400
   * `registry_not_allowed`. Default: the configured ones (lib/config.ts access.registries).
   */
  allowedRegistries?: readonly string[];
  /** Serve HTTPS with this certificate and key (PEM), e.g. from FERRY_TLS_CERT / FERRY_TLS_KEY. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /** Connection cap and slow-client timeouts (serverLimits.ts); each unset one takes its default. */
  limits?: Partial<GatewayServerLimits>;
  log?: (message: string) => void;
  /**
   * Deployments whose replicas run elsewhere (the kubernetes target's pods, lib/targets/kubernetes/
   * gatewayEndpoints.ts), served at `/d/{id}` like the gateway's own when it has no deployment by that id.
   */
  remoteDeployments?: RemoteDeployments;
}

export interface RemoteDeployments {
  get(id: string): RemoteDeployment | undefined;
  close(): void;
}

/** A deployment requests are routed to: the gateway's own, or one of remote endpoints. */
type Served = LocalDeployment | RemoteDeployment;
type ServedSet = RevisionSet<{ name: string }>;

export interface Gateway {
  url: string;
  /** Every route of the control API with the scope it needs: what the access tests walk. */
  controlRoutes: readonly ControlRoute[];
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
  if (opts.access?.auth !== true && !isLoopback(host)) {
    throw new Error(
      `refusing to serve the gateway on ${host} with auth off: auth is required off loopback (unset FERRY_AUTH=off)`,
    );
  }
  const access = new GatewayAccess(opts.access);
  const client = new ReplicaClient();
  let manager: DeploymentManager | undefined;
  let control: FastifyInstance | undefined;

  const limits = { ...DEFAULT_GATEWAY_SERVER_LIMITS, ...opts.limits };
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const rawUrl = req.url ?? '/';
    if (!manager || !control) return sendJson(res, 503, { error: 'gateway is starting' }, { 'retry-after': '1' });
    if (rawUrl.startsWith('/d/')) {
      serveDeploymentRequest(manager, req, res, rawUrl);
      return;
    }
    control.routing(req, res);
  };
  const server: http.Server = opts.tls
    ? https.createServer({ ...serverOptionsFor(limits), cert: opts.tls.cert, key: opts.tls.key }, handle)
    : http.createServer(serverOptionsFor(limits), handle);
  applyServerLimits(server, limits, log);

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
    const deployment: Served | undefined = m.get(id) ?? opts.remoteDeployments?.get(id);
    if (!deployment) {
      if (access.auth) unknownDeployment(req, res, id);
      else noDeployment(res, id);
      return;
    }
    if (access.auth && !deployment.record.access.public) {
      const principal = access.principalOf(req.headers.authorization, req.socket.remoteAddress);
      if (principal instanceof Promise) {
        // A key not seen in the last few seconds: verified once, then cached.
        principal.then(
          (p) => admitted(p, deployment, id, res) && route(m, deployment, req, res, upstreamPath),
          (err) => sendError(res, err),
        );
        return;
      }
      if (!admitted(principal, deployment, id, res)) return;
    }
    route(m, deployment, req, res, upstreamPath);
  }

  /**
   * No deployment of that id: a caller without a valid key gets the 401 a keyed deployment would give, so
   * that only a key tells a deployment that exists from one that does not (public ones answer anyone).
   */
  function unknownDeployment(req: http.IncomingMessage, res: http.ServerResponse, id: string): void {
    const answer = (p: Principal | undefined) => {
      const refused = p ? undefined : access.inference(undefined, '');
      if (refused && !refused.ok) sendJson(res, refused.status, { error: refused.message }, AUTH_CHALLENGE);
      else noDeployment(res, id);
    };
    const principal = access.principalOf(req.headers.authorization, req.socket.remoteAddress);
    if (principal instanceof Promise) principal.then(answer, (err) => sendError(res, err));
    else answer(principal);
  }

  /** True if the caller may send inference to the deployment; else answers 401, 403 or (another project's) 404. */
  function admitted(
    principal: Principal | undefined,
    deployment: Served,
    id: string,
    res: http.ServerResponse,
  ): boolean {
    const decision = access.inference(principal, deployment.record.access.project);
    if (decision.ok) return true;
    if (decision.status === 404) noDeployment(res, id);
    else sendJson(res, decision.status, { error: decision.message }, decision.status === 401 ? AUTH_CHALLENGE : {});
    return false;
  }

  function route(
    m: DeploymentManager,
    deployment: Served,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    upstreamPath: string,
  ): void {
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
    deployment: Served,
    revision: ServedSet,
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
    deployment: Served,
    revision: ServedSet,
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
  const url = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let lock: { release(): void };
  let m: DeploymentManager;
  try {
    const registries = opts.allowedRegistries ?? loadConfig().access.registries;
    m = new DeploymentManager({
      stateDir: opts.stateDir,
      gatewayUrl: opts.publicUrl ?? url,
      pullImage: opts.pullImage ?? defaultPullImage,
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
      stopGraceMs: opts.stopGraceMs ?? 30_000,
      drainTimeoutMs: opts.drainTimeoutMs ?? 30_000,
      autoscaleTickMs: opts.autoscaleTickMs ?? 200,
      standby: opts.standby ?? true,
      registries,
      log,
    });
    lock = acquireStateDirLock(opts.stateDir);
  } catch (err) {
    server.close();
    throw err;
  }
  try {
    await m.restore();
    control = await buildControlApp(m, access);
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
    controlRoutes: control.controlRoutes,
    close(closeOpts) {
      closed ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        opts.remoteDeployments?.close();
        await m.close(closeOpts?.stopReplicas ?? false);
        server.closeAllConnections();
        client.destroy();
        await control?.close();
        await serverClosed;
        lock.release();
      })();
      return closed;
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers?: http.OutgoingHttpHeaders): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The same answer for a deployment that does not exist and one of another project. */
function noDeployment(res: http.ServerResponse, id: string): void {
  sendJson(res, 404, { error: `no deployment "${id}" on this gateway` });
}

function sendError(res: http.ServerResponse, err: unknown): void {
  const answer = errorAnswer(err);
  sendJson(res, answer.status, { error: answer.body.error }, answer.headers);
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\./.test(host);
}
