/**
 * The `kubernetes` deployment target: a Ferry deployment is a Service (carrying the spec as applied)
 * and one Deployment per revision, in one namespace, applied by server-side apply and followed with
 * watches. Requests reach the pods through Ferry's gateway (kubernetesRoutes.ts): it splits traffic
 * between the revisions' pods, holds requests while a revision scales from zero, and drives the
 * revisions' replica counts through the scale subresource (its concurrency autoscaler and idle
 * scale to zero). This side changes the objects; the gateway follows them.
 */
import { createHash } from 'node:crypto';
import type { V1Deployment, V1Pod, V1Service } from '@kubernetes/client-node';
import { applyScalingChange, type ParsedSpec, parseDeploymentSpec } from '../../gateway/deploymentSpec';
import type { RemoteActivity } from '../../gateway/remoteDeployment';
import { mergeReplicaMetrics } from '../../gateway/replicaMetrics';
import { withinAutoscalingBounds } from '../../gateway/revisionSet';
import { normalizeTrafficPolicy } from '../../gateway/trafficPolicy';
import { SERVER_PORT } from '../../image/imageKinds';
import {
  type ChangeOptions,
  DeploymentNotFoundError,
  type DeploymentSpec,
  type DeploymentStatus,
  type DeploymentTarget,
  type ReplicaResources,
  type ReplicaStatus,
  type RevisionStatus,
  type ScalingChange,
  type TrafficPolicy,
} from '../deploymentTarget';
import { GatewayRequestError } from '../local';
import type { ClusterClient } from './clusterClient';
import { deploymentService, pullReference, revisionDeployment } from './manifests';
import {
  ANNOTATIONS,
  deploymentSelector,
  LABELS,
  labelValue,
  MANAGED_SELECTOR,
  revisionObjectName,
  serviceName,
} from './objectNames';
import { watchPodsGone, watchRollout } from './rolloutWatch';

export interface KubernetesTargetOptions {
  client: ClusterClient;
  namespace: string;
  /** The gateway in front of the pods: endpoints are `<gatewayUrl>/d/<id>`. */
  gatewayUrl: string;
  /** Limits of a pod when the spec gives none (the gateway's defaults, FERRY_REPLICA_CPUS / _MEMORY_MB). */
  defaultResources: ReplicaResources;
  /** The server's drain after SIGTERM (the pods' terminationGracePeriodSeconds follows it). */
  drainTimeoutMs: number;
  /** How long a rollout may take before it counts as failed. Default 300 s. */
  rolloutTimeoutMs?: number;
  /** Progress of a rollout, for heartbeats. */
  onProgress?: (step: string) => void;
}

/** The spec as the Service records it. */
type RecordedSpec = ParsedSpec & { access: NonNullable<ParsedSpec['access']> };

const DEFAULT_ACCESS = { project: 'default', public: false };

/** The count a revision starts with: its own or the deployment's, within autoscaling bounds. */
function initialReplicas(r: { replicas?: number }, spec: Pick<ParsedSpec, 'replicas' | 'autoscaling'>): number {
  return withinAutoscalingBounds(r.replicas ?? spec.replicas, spec.autoscaling);
}

export function specVersionOf(spec: RecordedSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
}

export class KubernetesTarget implements DeploymentTarget {
  readonly name = 'kubernetes';
  private readonly client: ClusterClient;
  readonly namespace: string;

  constructor(private readonly opts: KubernetesTargetOptions) {
    this.client = opts.client;
    this.namespace = opts.namespace;
  }

  /**
   * Creates or updates a deployment and resolves once every revision's pods are ready. A rollout
   * that fails leaves the deployment as it was: new revisions removed, changed ones re-applied.
   */
  async apply(
    spec: DeploymentSpec,
    opts: ChangeOptions & { keepHibernated?: boolean } = {},
  ): Promise<DeploymentStatus> {
    const { id, ...body } = spec;
    const parsed = parseDeploymentSpec(id, body);
    for (const r of parsed.revisions) {
      if (!r.image)
        throw new GatewayRequestError(
          400,
          'the kubernetes target runs images only',
          `revision ${r.name}: the kubernetes target runs images, not a model directory`,
          'bad_request',
        );
    }
    const service = await this.client.readService(this.namespace, serviceName(id));
    const previous = service ? recordedSpec(service) : undefined;
    this.checkIfMatch(id, previous, opts.ifMatch);
    const next: RecordedSpec = { ...parsed, access: parsed.access ?? previous?.access ?? DEFAULT_ACCESS };
    const existing = new Map(
      (await this.revisionDeployments(id)).map((d) => [d.metadata?.annotations?.[ANNOTATIONS.revision] ?? '', d]),
    );
    const hibernated =
      opts.keepHibernated === true &&
      existing.size > 0 &&
      [...existing.values()].every((d) => (d.spec?.replicas ?? 0) === 0);

    const applied: string[] = [];
    try {
      for (const r of next.revisions) {
        const current = existing.get(r.name)?.spec?.replicas;
        // A running revision keeps its count when autoscaled (what the gateway's autoscaler set).
        let replicas = initialReplicas(r, next);
        if (hibernated) replicas = 0;
        else if (next.autoscaling && current) replicas = withinAutoscalingBounds(current, next.autoscaling);
        await this.client.apply(this.manifest(id, next, r.name, replicas));
        applied.push(r.name);
      }
      if (!hibernated) await Promise.all(next.revisions.map((r) => this.rollout(id, r.name)));
    } catch (err) {
      await this.undo(id, previous, existing, applied);
      throw err;
    }
    await this.client.apply(
      deploymentService({
        namespace: this.namespace,
        deploymentId: id,
        model: next.model,
        spec: next,
        createdAt: service?.metadata?.annotations?.[ANNOTATIONS.createdAt] ?? new Date().toISOString(),
      }),
    );
    // Revisions no longer in the spec go once the traffic no longer names them.
    const kept = new Set(next.revisions.map((r) => revisionObjectName(id, r.name)));
    for (const d of existing.values()) {
      const name = d.metadata?.name ?? '';
      if (!kept.has(name)) await this.client.deleteDeployment(this.namespace, name);
    }
    return this.status(id);
  }

  async status(id: string): Promise<DeploymentStatus> {
    const service = await this.client.readService(this.namespace, serviceName(id));
    if (!service) throw new DeploymentNotFoundError(id);
    return this.statusOf(id, service);
  }

  async list(): Promise<DeploymentStatus[]> {
    const services = await this.client.listServices(this.namespace, MANAGED_SELECTOR);
    return Promise.all(services.map((s) => this.statusOf(s.metadata?.annotations?.[ANNOTATIONS.deployment] ?? '', s)));
  }

  async scale(id: string, replicas: number): Promise<DeploymentStatus> {
    const current = await this.status(id);
    return this.apply({ ...current.spec, id, replicas });
  }

  async setScaling(id: string, change: ScalingChange): Promise<DeploymentStatus> {
    const current = await this.status(id);
    const s = current.spec;
    const scaling = applyScalingChange(
      {
        replicas: s.replicas ?? 1,
        autoscaling: current.autoscaling ?? null,
        scaleToZeroAfterMs: s.scaleToZeroAfterMs ?? null,
      },
      change,
    );
    return this.apply(
      {
        ...s,
        id,
        replicas: scaling.replicas,
        autoscaling: scaling.autoscaling ?? undefined,
        scaleToZeroAfterMs: scaling.scaleToZeroAfterMs,
      },
      { keepHibernated: true },
    );
  }

  /** Changes only the split and rules (the gateway routes by them from its next request); no pod restarts. */
  async setTraffic(id: string, traffic: TrafficPolicy, opts: ChangeOptions = {}): Promise<DeploymentStatus> {
    const service = await this.client.readService(this.namespace, serviceName(id));
    if (!service) throw new DeploymentNotFoundError(id);
    const spec = recordedSpec(service);
    this.checkIfMatch(id, spec, opts.ifMatch);
    const next: RecordedSpec = {
      ...spec,
      traffic: normalizeTrafficPolicy(
        traffic,
        spec.revisions.map((r) => r.name),
      ),
    };
    await this.client.annotateService(this.namespace, serviceName(id), { [ANNOTATIONS.spec]: JSON.stringify(next) });
    return this.status(id);
  }

  /** Scales every revision to zero and waits until their pods are gone. */
  async hibernate(id: string): Promise<DeploymentStatus> {
    const deployments = await this.requireDeployments(id);
    for (const d of deployments) await this.client.scale(this.namespace, d.metadata!.name!, 0);
    await watchPodsGone(this.client, this.namespace, deploymentSelector(id), this.stopTimeoutMs());
    return this.status(id);
  }

  /** Scales every revision back to its starting count and waits until its pods are ready. */
  async wake(id: string): Promise<DeploymentStatus> {
    const service = await this.client.readService(this.namespace, serviceName(id));
    if (!service) throw new DeploymentNotFoundError(id);
    const spec = recordedSpec(service);
    for (const r of spec.revisions) {
      const name = revisionObjectName(id, r.name);
      const d = await this.client.readDeployment(this.namespace, name);
      if ((d?.spec?.replicas ?? 0) === 0)
        await this.client.scale(this.namespace, name, Math.max(1, initialReplicas(r, spec)));
    }
    await Promise.all(spec.revisions.map((r) => this.rollout(id, r.name)));
    return this.status(id);
  }

  /** Deletes the Deployments and the Service and waits until their pods are gone: nothing is left. */
  async destroy(id: string): Promise<void> {
    for (const d of await this.revisionDeployments(id))
      await this.client.deleteDeployment(this.namespace, d.metadata!.name!);
    await this.client.deleteService(this.namespace, serviceName(id));
    await watchPodsGone(this.client, this.namespace, deploymentSelector(id), this.stopTimeoutMs());
  }

  /** Every ready pod's metrics, merged, each sample labelled with its pod and revision. */
  async metrics(id: string): Promise<string> {
    await this.status(id); // unknown → DeploymentNotFoundError
    const pods = (await this.client.listPods(this.namespace, deploymentSelector(id))).filter(podReady);
    const texts = await Promise.all(
      pods.map(async (p) => {
        const res = await fetch(`http://${p.status!.podIP}:${SERVER_PORT}/metrics`, {
          signal: AbortSignal.timeout(5000),
        });
        return {
          pod: p.metadata!.name!,
          revision: p.metadata?.annotations?.[ANNOTATIONS.revision],
          metricsText: await res.text(),
        };
      }),
    );
    return mergeReplicaMetrics(texts.map((t) => ({ pid: t.pod, revision: t.revision, metricsText: t.metricsText })));
  }

  // ---- helpers ----

  private manifest(id: string, spec: RecordedSpec, revision: string, replicas: number): V1Deployment {
    const r = spec.revisions.find((x) => x.name === revision)!;
    const image = r.image!;
    return revisionDeployment({
      namespace: this.namespace,
      deploymentId: id,
      model: spec.model,
      revision,
      image: pullReference({ registry: image.registry, repository: image.repository, digest: image.reference }),
      replicas,
      resources: spec.resources ?? this.opts.defaultResources,
      drainTimeoutMs: this.opts.drainTimeoutMs,
    });
  }

  private rollout(id: string, revision: string) {
    return watchRollout(
      this.client,
      this.namespace,
      revisionObjectName(id, revision),
      this.revisionSelector(id, revision),
      {
        timeoutMs: this.opts.rolloutTimeoutMs ?? 300_000,
        onProgress: (step) => this.opts.onProgress?.(`revision ${revision}: ${step}`),
      },
    );
  }

  /** After a failed rollout: revisions the previous spec had are applied as they were, new ones deleted. */
  private async undo(
    id: string,
    previous: RecordedSpec | undefined,
    existing: Map<string, V1Deployment>,
    applied: string[],
  ) {
    const deleted: string[] = [];
    for (const name of applied) {
      const before = existing.get(name);
      if (previous && before && previous.revisions.some((r) => r.name === name)) {
        await this.client.apply(this.manifest(id, previous, name, before.spec?.replicas ?? 0)).catch(() => {});
      } else {
        await this.client.deleteDeployment(this.namespace, revisionObjectName(id, name)).catch(() => {});
        deleted.push(name);
      }
    }
    // The deleted revisions' pods go with their Deployments, in the background: the failure is reported once
    // they are gone, so nothing of the failed rollout outlives it. A wait that fails does not hide the failure.
    await Promise.all(
      deleted.map((name) =>
        watchPodsGone(this.client, this.namespace, this.revisionSelector(id, name), this.stopTimeoutMs()).catch(
          () => {},
        ),
      ),
    );
  }

  private revisionSelector(id: string, revision: string): string {
    return `${deploymentSelector(id)},${LABELS.revision}=${labelValue(revision)}`;
  }

  private checkIfMatch(id: string, current: RecordedSpec | undefined, ifMatch: string | undefined): void {
    if (ifMatch === undefined || !current) return;
    if (specVersionOf(current) !== ifMatch)
      throw new GatewayRequestError(
        409,
        `deployment "${id}" changed since its status was read`,
        `deployment "${id}" changed since version ${ifMatch} was read`,
        'spec_changed',
      );
  }

  private async revisionDeployments(id: string): Promise<V1Deployment[]> {
    return this.client.listDeployments(this.namespace, deploymentSelector(id));
  }

  private async requireDeployments(id: string): Promise<V1Deployment[]> {
    if (!(await this.client.readService(this.namespace, serviceName(id)))) throw new DeploymentNotFoundError(id);
    return this.revisionDeployments(id);
  }

  private stopTimeoutMs(): number {
    return this.opts.drainTimeoutMs + 60_000;
  }

  private async statusOf(id: string, service: V1Service): Promise<DeploymentStatus> {
    const spec = recordedSpec(service);
    const [deployments, pods] = await Promise.all([
      this.revisionDeployments(id),
      this.client.listPods(this.namespace, deploymentSelector(id)),
    ]);
    const byRevision = new Map(deployments.map((d) => [d.metadata?.annotations?.[ANNOTATIONS.revision] ?? '', d]));
    const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
    const replicas: ReplicaStatus[] = live.map((p) => ({
      pid: 0,
      port: SERVER_PORT,
      startedAt: String(p.status?.startTime ?? p.metadata?.creationTimestamp ?? ''),
      ready: podReady(p),
      revision: p.metadata?.annotations?.[ANNOTATIONS.revision] ?? '',
      inFlight: 0,
      runtime: 'pod',
      pod: p.metadata?.name,
      ip: p.status?.podIP,
      phase: podPhase(p),
    }));
    const revisions: RevisionStatus[] = spec.revisions.map((r) => ({
      name: r.name,
      image: { ...r.image!, digest: r.image!.reference },
      percent: spec.traffic.split[r.name] ?? 0,
      desiredReplicas: byRevision.get(r.name)?.spec?.replicas ?? 0,
      readyReplicas: replicas.filter((x) => x.revision === r.name && x.ready).length,
      inFlight: 0,
      heldRequests: 0,
    }));
    const desired = revisions.reduce((n, r) => n + r.desiredReplicas, 0);
    const restarts = live.reduce(
      (n, p) => n + (p.status?.containerStatuses ?? []).reduce((m, c) => m + c.restartCount, 0),
      0,
    );
    const { revisions: revs, ...rest } = spec;
    const first = revs[0];
    return {
      id,
      model: spec.model,
      state: desired === 0 ? 'hibernated' : 'running',
      endpoint: `${this.opts.gatewayUrl.replace(/\/+$/, '')}/d/${encodeURIComponent(id)}`,
      desiredReplicas: desired,
      replicas,
      image: { ...first.image!, digest: first.image!.reference },
      createdAt: service.metadata?.annotations?.[ANNOTATIONS.createdAt] ?? '',
      runningSince: desired === 0 ? null : (deployments[0]?.metadata?.creationTimestamp?.toString() ?? null),
      ...recordedActivity(service),
      restarts,
      revisions,
      traffic: spec.traffic,
      autoscaling: spec.autoscaling,
      scaleToZeroAfterMs: spec.scaleToZeroAfterMs,
      inFlight: 0,
      heldRequests: 0,
      scaleEvents: [],
      events: [],
      resources: spec.resources ?? this.opts.defaultResources,
      spec: {
        model: rest.model,
        replicas: rest.replicas,
        revisions: revs.map((r) => ({
          name: r.name,
          image: r.image,
          ...(r.replicas !== undefined ? { replicas: r.replicas } : {}),
        })),
        traffic: rest.traffic,
        ...(rest.autoscaling ? { autoscaling: rest.autoscaling } : {}),
        scaleToZeroAfterMs: rest.scaleToZeroAfterMs,
        access: rest.access,
        ...(rest.resources ? { resources: rest.resources } : {}),
      },
      specVersion: specVersionOf(spec),
    };
  }
}

export function recordedSpec(service: V1Service): RecordedSpec {
  const text = service.metadata?.annotations?.[ANNOTATIONS.spec];
  if (!text)
    throw new Error(
      `Service ${service.metadata?.namespace}/${service.metadata?.name} has no ${ANNOTATIONS.spec} annotation`,
    );
  return JSON.parse(text) as RecordedSpec;
}

/** What the gateway reported of the deployment's requests (none yet: nothing served). */
function recordedActivity(service: V1Service): RemoteActivity {
  const none: RemoteActivity = { lastRequestAt: null, requestsServed: 0, coldStarts: 0, lastWakeMs: null };
  const text = service.metadata?.annotations?.[ANNOTATIONS.activity];
  if (!text) return none;
  try {
    return { ...none, ...(JSON.parse(text) as Partial<RemoteActivity>) };
  } catch {
    return none;
  }
}

export function podReady(p: V1Pod): boolean {
  return (
    !p.metadata?.deletionTimestamp &&
    !!p.status?.podIP &&
    (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/** What a pod is doing, as `kubectl get pods` says it: a container's waiting reason, else the phase. */
export function podPhase(p: V1Pod): string {
  if (p.metadata?.deletionTimestamp) return 'Terminating';
  for (const c of p.status?.containerStatuses ?? []) if (c.state?.waiting?.reason) return c.state.waiting.reason;
  return p.status?.phase ?? 'Pending';
}
