/**
 * What GET /_ferry/deployments/{id} reports (DeploymentStatus, lib/targets/deploymentTarget.ts): the
 * deployment's counts and state per revision and replica, and the spec that re-creates it.
 */
import type {
  DeploymentSpec,
  DeploymentState,
  DeploymentStatus,
  ReplicaResources,
  ReplicaStatus,
  RevisionStatus,
  ScaleEvent,
} from '../targets/deploymentTarget';
import { DEFAULT_REVISION } from './deploymentSpec';
import type { DeploymentRecord, RevisionRecord } from './deploymentStore';
import type { Replica } from './replicaProcess';
import { initialReplicas, type RevisionSet } from './revisionSet';
import type { TrafficRouter } from './trafficPolicy';

/** What the status is read from (LocalDeployment). */
export interface StatusSource {
  readonly record: DeploymentRecord;
  readonly state: DeploymentState;
  readonly revisions: ReadonlyMap<string, RevisionSet>;
  readonly router: TrafficRouter;
  /** Replicas that belong to the deployment and are not retired. */
  readonly replicas: readonly Replica[];
  readonly lastRequestAt: string | null;
  readonly scaleEvents: readonly ScaleEvent[];
  /** The limits of an image replica whose spec gives none. */
  readonly defaultResources: ReplicaResources;
  readonly specVersion: string;
  inFlight(): number;
  heldRequests(): number;
}

export function deploymentStatus(d: StatusSource, gatewayUrl: string): DeploymentStatus {
  const r = d.record;
  const first = r.revisions[0];
  const hibernated = r.state === 'hibernated';
  const revisions: RevisionStatus[] = [...d.revisions.values()].map((set) => ({
    name: set.name,
    ...artifactOf(set.spec),
    percent: d.router.percentOf(set.name),
    desiredReplicas: set.desired,
    readyReplicas: set.readyCount(),
    inFlight: set.inFlight,
    heldRequests: set.held,
    ...(set.autoscaler?.last
      ? {
          autoscaler: {
            panic: set.autoscaler.last.panic,
            stableConcurrency: round(set.autoscaler.last.stableConcurrency),
            panicConcurrency: round(set.autoscaler.last.panicConcurrency),
          },
        }
      : {}),
  }));
  const replicas: ReplicaStatus[] = d.replicas
    .filter((x) => !x.exited && !x.stopping)
    .map((x) => ({
      pid: x.pid,
      port: x.port,
      startedAt: x.record.startedAt,
      ready: x.ready,
      revision: x.revision,
      inFlight: x.inFlight,
      runtime: x.runtime,
    }));
  return {
    id: r.id,
    model: r.model,
    state: d.state,
    endpoint: `${gatewayUrl}/d/${encodeURIComponent(r.id)}`,
    // While hibernated: what a wake starts.
    desiredReplicas: [...d.revisions.values()].reduce(
      (n, s) => n + (hibernated ? initialReplicas(s.spec, r) : s.desired),
      0,
    ),
    replicas,
    ...artifactOf(first),
    createdAt: r.createdAt,
    runningSince: r.runningSince,
    lastRequestAt: d.lastRequestAt,
    requestsServed: r.requestsServed,
    coldStarts: r.coldStarts,
    lastWakeMs: r.lastWakeMs,
    restarts: r.restarts,
    revisions,
    traffic: r.traffic,
    autoscaling: r.autoscaling,
    scaleToZeroAfterMs: r.scaleToZeroAfterMs,
    inFlight: d.inFlight(),
    heldRequests: d.heldRequests(),
    scaleEvents: [...d.scaleEvents],
    events: [...r.events],
    resources: r.resources ?? d.defaultResources,
    specVersion: d.specVersion,
    spec: specOf(r),
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function artifactOf(spec: RevisionRecord): Pick<RevisionStatus, 'image' | 'modelDir'> {
  if (!spec.image) return spec.modelDir ? { modelDir: spec.modelDir } : {};
  const { digest, platformDigest } = spec.plan;
  return { image: { ...spec.image, ...(digest ? { digest } : {}), ...(platformDigest ? { platformDigest } : {}) } };
}

/** The spec that re-creates this deployment: the original single-revision form when it is one. */
function specOf(r: DeploymentRecord): Omit<DeploymentSpec, 'id'> {
  const artifact = (x: RevisionRecord) => (x.image ? { image: x.image } : { modelDir: x.modelDir });
  const single =
    r.revisions.length === 1 && r.revisions[0].name === DEFAULT_REVISION && r.revisions[0].replicas === undefined;
  return {
    model: r.model,
    replicas: r.replicas,
    ...(single
      ? artifact(r.revisions[0])
      : {
          revisions: r.revisions.map((x) => ({
            name: x.name,
            ...artifact(x),
            ...(x.replicas !== undefined ? { replicas: x.replicas } : {}),
          })),
          traffic: r.traffic,
        }),
    ...(r.autoscaling ? { autoscaling: r.autoscaling } : {}),
    scaleToZeroAfterMs: r.scaleToZeroAfterMs,
    access: r.access,
    ...(r.resources ? { resources: r.resources } : {}),
  };
}
