/**
 * The gateway's view of the kubernetes target: watches (cluster-wide, Ferry's labels only) of the
 * Services that record each deployment's spec, the revisions' Deployments (their replica counts) and
 * their pods (ready ones are the endpoints), kept as RemoteDeployments the gateway routes to. The
 * gateway's activator, traffic split and concurrency autoscaler then work on pods as on its own
 * replicas; a count they change goes to the Deployment's scale subresource. What the gateway saw of
 * the requests (the last one, counts, the last wake) goes to an annotation of the Service, at most
 * every few seconds, where the target's status reads it.
 */
import type { KubernetesObject, V1Deployment, V1Pod, V1Service } from '@kubernetes/client-node';
import { RemoteDeployment, type RemoteEndpoint, type RemoteSpec } from '../../gateway/remoteDeployment';
import { SERVER_PORT } from '../../image/imageKinds';
import type { ClusterClient, WatchedObjects } from './clusterClient';
import { recordedSpec } from './kubernetesTarget';
import { ANNOTATIONS, MANAGED_SELECTOR, revisionObjectName, serviceName } from './objectNames';
import { PodProbes } from './podProbes';

const TICK_MS = 200;

function keyOf(o: KubernetesObject): string {
  return `${o.metadata?.namespace}/${o.metadata?.name}`;
}

export class KubernetesEndpoints {
  private readonly deployments = new Map<string, { namespace: string; remote: RemoteDeployment }>();
  private readonly services = new Map<string, V1Service>();
  private readonly workloads = new Map<string, V1Deployment>();
  private readonly pods = new Map<string, V1Pod>();
  private readonly stops: Array<() => void> = [];
  private closed = false;
  private readonly ticker: NodeJS.Timeout;
  /** A started pod is routable once it answers the gateway's own probe (a wake need not wait for the kubelet). */
  private readonly probes = new PodProbes((pod) => this.syncOwner(pod));

  constructor(
    private readonly client: ClusterClient,
    private readonly log: (message: string) => void,
  ) {
    this.ticker = setInterval(() => {
      for (const d of this.deployments.values()) d.remote.tick();
    }, TICK_MS);
    this.ticker.unref();
  }

  /** Starts the watches; resolves once each has been opened. */
  async start(): Promise<void> {
    await Promise.all([
      this.follow({ apiVersion: 'v1', kind: 'Service', plural: 'services' }, this.services, (o) =>
        this.syncService(o as V1Service),
      ),
      this.follow({ apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' }, this.workloads, (o) =>
        this.syncOwner(o),
      ),
      this.follow({ apiVersion: 'v1', kind: 'Pod', plural: 'pods' }, this.pods, (o) => {
        if (!this.pods.has(keyOf(o))) this.probes.forget(o);
        this.syncOwner(o);
      }),
    ]);
  }

  get(id: string): RemoteDeployment | undefined {
    return this.deployments.get(id)?.remote;
  }

  close(): void {
    this.closed = true;
    this.probes.close();
    clearInterval(this.ticker);
    for (const stop of this.stops) stop();
    for (const d of this.deployments.values()) d.remote.destroyed = true;
  }

  /**
   * Keeps `into` equal to the objects of `kind` (every namespace) with Ferry's labels: listed, then
   * watched. A watch the server closes (its timeout, an API server restart) is listed and watched
   * again, retried until the API server answers; objects gone in between are dropped then, and the
   * others stay routable meanwhile.
   */
  private async follow<T extends KubernetesObject>(
    kind: Omit<WatchedObjects, 'labelSelector'>,
    into: Map<string, T>,
    changed: (o: T) => void,
  ): Promise<void> {
    const reopen = (delayMs: number) =>
      setTimeout(
        () =>
          open().catch((e: Error) => {
            this.log(`kubernetes watch of ${kind.plural}: ${e.message}; retrying`);
            reopen(2000);
          }),
        delayMs,
      ).unref();
    const open = async (): Promise<void> => {
      if (this.closed) return;
      const before = new Map(into);
      const seen = new Set<string>();
      const stop = await this.client.listAndWatch(
        { ...kind, labelSelector: MANAGED_SELECTOR },
        (type, o) => {
          const key = keyOf(o);
          seen.add(key);
          if (type === 'DELETED') into.delete(key);
          else if (type === 'ADDED' || type === 'MODIFIED') into.set(key, o as T);
          else return;
          changed(o as T);
        },
        (err) => {
          if (this.closed) return;
          if (err) this.log(`kubernetes watch of ${kind.plural} closed: ${(err as Error).message ?? err}; reopening`);
          reopen(500);
        },
      );
      // Deleted while no watch was open: not in the list.
      for (const [key, o] of before) {
        if (seen.has(key)) continue;
        into.delete(key);
        changed(o);
      }
      if (this.closed) stop();
      else this.stops.push(stop);
    };
    await open();
  }

  private syncService(service: V1Service): void {
    const id = service.metadata?.annotations?.[ANNOTATIONS.deployment];
    if (!id) return;
    const namespace = service.metadata?.namespace ?? 'default';
    const current = this.services.get(keyOf(service));
    const entry = this.deployments.get(id);
    if (!current) {
      if (entry && entry.namespace === namespace) {
        entry.remote.destroyed = true;
        for (const set of entry.remote.revisions.values()) set.notifyReady();
        this.deployments.delete(id);
      }
      return;
    }
    let spec: RemoteSpec;
    try {
      const s = recordedSpec(current);
      spec = {
        model: s.model,
        access: s.access,
        replicas: s.replicas,
        revisions: s.revisions.map((r) => ({
          name: r.name,
          ...(r.replicas !== undefined ? { replicas: r.replicas } : {}),
        })),
        traffic: s.traffic,
        autoscaling: s.autoscaling,
        scaleToZeroAfterMs: s.scaleToZeroAfterMs,
      };
    } catch (err) {
      this.log(`kubernetes Service ${keyOf(current)}: ${(err as Error).message}`);
      return;
    }
    if (entry && entry.namespace !== namespace) return; // the same id in another namespace: the first one serves
    if (entry) entry.remote.update(spec);
    else {
      const remote = new RemoteDeployment(
        id,
        spec,
        (revision, replicas) => this.client.scale(namespace, revisionObjectName(id, revision), replicas),
        this.log,
        async (activity) => {
          await this.client.annotateService(namespace, serviceName(id), {
            [ANNOTATIONS.activity]: JSON.stringify(activity),
          });
        },
      );
      this.deployments.set(id, { namespace, remote });
    }
    this.syncDeployment(id);
  }

  private syncOwner(o: KubernetesObject): void {
    const id = o.metadata?.annotations?.[ANNOTATIONS.deployment];
    if (id) this.syncDeployment(id);
  }

  /** The deployment's revisions' desired counts and ready endpoints, from what the watches hold now. */
  private syncDeployment(id: string): void {
    const entry = this.deployments.get(id);
    if (!entry) return;
    const mine = (o: KubernetesObject) =>
      o.metadata?.namespace === entry.namespace && o.metadata?.annotations?.[ANNOTATIONS.deployment] === id;
    for (const d of this.workloads.values()) {
      if (mine(d))
        entry.remote.setDesired(d.metadata?.annotations?.[ANNOTATIONS.revision] ?? '', d.spec?.replicas ?? 0);
    }
    const endpoints = new Map<string, RemoteEndpoint[]>();
    for (const name of entry.remote.revisions.keys()) endpoints.set(name, []);
    for (const p of this.pods.values()) {
      if (!mine(p) || !this.probes.routable(p)) continue;
      endpoints.get(p.metadata?.annotations?.[ANNOTATIONS.revision] ?? '')?.push({
        name: p.metadata!.name!,
        host: p.status!.podIP!,
        port: SERVER_PORT,
        startedAt: String(p.status?.startTime ?? ''),
      });
    }
    for (const [revision, list] of endpoints) entry.remote.setEndpoints(revision, list);
  }
}

/**
 * The gateway's kubernetes endpoints when a kubeconfig is there (KUBECONFIG, else the stack's):
 * undefined without one. A cluster that cannot be reached is logged and the gateway serves its own
 * deployments as before.
 */
export async function kubernetesEndpointsIfConfigured(
  kubeconfig: string,
  log: (message: string) => void,
): Promise<KubernetesEndpoints | undefined> {
  const { existsSync } = await import('node:fs');
  if (!existsSync(kubeconfig)) return undefined;
  const { ClusterClient, loadKubeConfig } = await import('./clusterClient');
  const endpoints = new KubernetesEndpoints(new ClusterClient(loadKubeConfig(kubeconfig)), log);
  try {
    await endpoints.start();
    log(`serving the kubernetes target's deployments (kubeconfig ${kubeconfig})`);
    return endpoints;
  } catch (err) {
    endpoints.close();
    log(`warning: the kubernetes cluster is not reachable (${(err as Error).message}); serving local deployments only`);
    return undefined;
  }
}
