/**
 * Where deployments run. Every target (the embedded `local` gateway, Kubernetes, EC2) takes the same
 * spec and reports the same status, so the pipeline's deploy and monitor stages do not care which.
 */

/** An image in a registry; `reference` is a tag or (preferably, so a re-push cannot change it) a digest. */
export interface ImageRef {
  /** e.g. http://127.0.0.1:5000 */
  registry: string;
  repository: string;
  reference: string;
}

export interface DeploymentSpec {
  /** Stable id; also the route: `<gateway>/d/<id>`. Letters, digits, '.', '_' and '-'. */
  id: string;
  /** The model the replicas serve (readiness and status refer to it). */
  model: string;
  /**
   * Replicas per revision: the fixed count, or with `autoscaling` the count to start with (clamped to
   * its min/max). Optional when `autoscaling` is given (then its `minReplicas`).
   */
  replicas?: number;
  /** What to run (one revision, named "default"): a model image... */
  image?: ImageRef;
  /** ...or, on the local target only, a directory with ferry-models.json served by the repo's runtime. */
  modelDir?: string;
  /**
   * Instead of `image`/`modelDir`: several revisions, each with its own replica set (canary, A/B).
   * A revision whose name stays the same and whose image/modelDir changes is replaced in place
   * (new replicas first, then the old ones are drained).
   */
  revisions?: RevisionSpec[];
  /** How requests are shared between revisions; default: all to the first revision. */
  traffic?: TrafficPolicy;
  /** Concurrency-based autoscaling per revision; absent: a fixed `replicas` per revision. */
  autoscaling?: AutoscalingSpec;
  /**
   * Hibernate (stop every replica) after this long without a request; the next request is held while
   * a replica starts. Absent or null: only an explicit hibernate (e.g. the monitor workflow's) does it.
   */
  scaleToZeroAfterMs?: number | null;
  /**
   * Who may reach it: the project (tenant) it belongs to, and whether inference needs no key. Left out of
   * a change, it stays as it is; a new deployment without it belongs to the caller's project, keyed.
   */
  access?: DeploymentAccess;
  /**
   * Limits of each replica of an image (enforced when it runs as a container); absent: the gateway's
   * defaults (FERRY_REPLICA_CPUS, FERRY_REPLICA_MEMORY_MB).
   */
  resources?: ReplicaResources;
}

export interface DeploymentAccess {
  project: string;
  /** Inference without a key (`ferry deploy --public`); the control API always needs one. */
  public: boolean;
}

export interface ReplicaResources {
  /** CPUs' worth of time, e.g. 0.5. */
  cpus: number;
  /** Memory limit in MiB (no swap beyond it): over it, the kernel kills the replica and it is replaced. */
  memoryMb: number;
}

/** What runs a replica: a container runtime, a plain host process, or (kubernetes target) a pod. */
export type ReplicaRuntimeName = 'youki' | 'runc' | 'process' | 'pod';

export interface RevisionSpec {
  /** Letters, digits, '.', '_' and '-'; shown in the `x-ferry-revision` response header. */
  name: string;
  image?: ImageRef;
  modelDir?: string;
  /** Overrides the deployment's `replicas` for this revision. */
  replicas?: number;
}

/**
 * Which revision serves a request, decided per request (so a change takes effect on the next request
 * and drops none):
 *   1. `x-ferry-variant: <revision>` names a revision directly (A/B by header; an unknown name falls through);
 *   2. the first `rules` entry whose header has exactly `value`;
 *   3. otherwise a weighted random pick by `split` percentages (which sum to 100).
 */
export interface TrafficPolicy {
  /** e.g. {"v1": 90, "v2": 10}. Default: 100 to the first revision. */
  split?: Record<string, number>;
  rules?: TrafficRule[];
}

export interface TrafficRule {
  /** Header name (case-insensitive). */
  header: string;
  value: string;
  revision: string;
}

/**
 * Knative-style concurrency autoscaling: desired replicas = ceil(average in-flight requests (held ones
 * included) / targetInFlight), averaged over the stable window; when the short panic window's average
 * reaches panicThreshold × what the ready replicas are sized for, it scales up on the panic window at
 * once and does not scale down until the panic has been over for a stable window. A lower count is
 * applied only after it has been wanted for scaleDownDelayMs.
 */
export interface AutoscalingSpec {
  /** In-flight requests one replica should carry. Default 1. */
  targetInFlight?: number;
  /** Default 1 (scaling to zero is `scaleToZeroAfterMs`). */
  minReplicas?: number;
  /** Default max(minReplicas, replicas, 4). */
  maxReplicas?: number;
  /** Default 60000. */
  stableWindowMs?: number;
  /** Default stableWindowMs / 10. */
  panicWindowMs?: number;
  /** Default 2. */
  panicThreshold?: number;
  /** Default 30000. */
  scaleDownDelayMs?: number;
}

/**
 * A change of scaling alone (revisions, images and traffic stay): fields left out keep their values.
 * Running replicas are neither restarted nor dropped by it, except that a lower count (or max)
 * drains the extra ones; a hibernated deployment stays hibernated and wakes with the new counts.
 */
export interface ScalingChange {
  /** The deployment's `replicas`: the fixed count, or the starting count when autoscaling (revisions with their own keep theirs). */
  replicas?: number;
  /** null: fixed counts from now on; an object: merged over the current settings (or the defaults), so {maxReplicas: 8} changes only the max. */
  autoscaling?: AutoscalingSpec | null;
  /** null: no scale to zero on idle. */
  scaleToZeroAfterMs?: number | null;
}

/**
 * A lower bound on a deployment's replicas for a while (the monitor's predictive floor): `replicas` of
 * the revision with the most traffic until `ttlMs` from now, unless renewed; 0 clears it.
 */
export interface ReplicaFloor {
  replicas: number;
  ttlMs: number;
}

export type DeploymentState = 'running' | 'hibernated' | 'waking';

export interface ReplicaStatus {
  pid: number;
  port: number;
  startedAt: string;
  /** False while the replica is still starting. */
  ready: boolean;
  /** The revision it serves. */
  revision: string;
  /** Requests the gateway is forwarding to it now. */
  inFlight: number;
  /** What runs it (a container under youki or runc, a plain process, or a pod). */
  runtime: ReplicaRuntimeName;
  /** On the kubernetes target: the pod (pid and port are 0 and the server's port), its IP and what it is doing (Running, ImagePullBackOff, …). */
  pod?: string;
  ip?: string;
  phase?: string;
}

/**
 * Something that happened to a deployment's replicas: `exited`, a replica that was serving stopped
 * without being asked (it is replaced; `oomKilled` when it went over its memory limit); `start-failed`;
 * `process-fallback`, an image's replicas run as plain processes, and why.
 */
export interface ReplicaEvent {
  at: string;
  type: 'exited' | 'start-failed' | 'process-fallback';
  revision: string;
  pid?: number;
  runtime: ReplicaRuntimeName;
  reason: string;
  oomKilled?: boolean;
}

export interface RevisionStatus {
  name: string;
  /** digest: what the reference resolved to (an index, for a multi-platform image); platformDigest: the manifest that runs here. */
  image?: ImageRef & { digest?: string; platformDigest?: string };
  modelDir?: string;
  /** Share of the split (rules and x-ferry-variant come first). */
  percent: number;
  /** What the autoscaler (or the fixed count) wants now; 0 while hibernated. */
  desiredReplicas: number;
  readyReplicas: number;
  inFlight: number;
  /** Requests waiting for a ready replica of this revision. */
  heldRequests: number;
  /** Present when autoscaling: the averages it decides on. */
  autoscaler?: { panic: boolean; stableConcurrency: number; panicConcurrency: number };
}

export interface ScaleEvent {
  at: string;
  revision: string;
  from: number;
  to: number;
  /** stable | panic | idle (scale to zero) | wake | hibernate | apply */
  reason: string;
}

export interface DeploymentStatus {
  id: string;
  model: string;
  state: DeploymentState;
  /** Base URL of the Open Inference Protocol API, e.g. http://127.0.0.1:8080/d/<id>. */
  endpoint: string;
  /**
   * Replicas wanted now over all revisions (while hibernated: how many a wake starts); `replicas`
   * lists the ones running now (none while hibernated).
   */
  desiredReplicas: number;
  replicas: ReplicaStatus[];
  /** The first revision's image or model dir. */
  image?: ImageRef & { digest?: string };
  modelDir?: string;
  createdAt: string;
  /** When the current run of replicas started (null while hibernated). */
  runningSince: string | null;
  /** When a request last arrived or finished (the idle clock of scale-to-zero and of the monitor). */
  lastRequestAt: string | null;
  /** Requests forwarded to replicas over the deployment's life (survives hibernation). */
  requestsServed: number;
  /** Times a request found the deployment hibernated and was held while replicas started. */
  coldStarts: number;
  /** How long the last wake took until the first replica was ready (ms). */
  lastWakeMs: number | null;
  /** Replicas restarted after they died unexpectedly. */
  restarts: number;
  revisions: RevisionStatus[];
  traffic: Required<TrafficPolicy>;
  /** Settings with defaults filled in, or null for fixed replica counts. */
  autoscaling: Required<AutoscalingSpec> | null;
  scaleToZeroAfterMs: number | null;
  inFlight: number;
  heldRequests: number;
  /** The most recent scale decisions, newest last. */
  scaleEvents: ScaleEvent[];
  /** The most recent replica events (unplanned exits with their reasons, fallbacks), newest last. */
  events: ReplicaEvent[];
  /** The limits each image replica runs with (the spec's, or the gateway's defaults). */
  resources: ReplicaResources;
  /** The spec as applied (defaults filled in): apply it again with changes to update. */
  spec: Omit<DeploymentSpec, 'id'>;
  /**
   * Changes whenever the spec (revisions, traffic, scaling) changes. Given back as `ifMatch`, a change
   * applies only if nothing changed since this status was read (the local gateway refuses it with 409).
   */
  specVersion: string;
}

/** A conditional change: only over the spec version read before (optimistic concurrency). */
export interface ChangeOptions {
  ifMatch?: string;
}

/**
 * What went wrong, as the gateway's control API says in an error body `{"error": message, "code": code}`
 * (lib/gateway/controlErrors.ts gives each its HTTP status). Clients branch on these, not on the message.
 */
export type GatewayErrorCode =
  | 'bad_request'
  | 'registry_not_allowed'
  | 'unauthorized'
  | 'forbidden'
  | 'deployment_not_found'
  | 'no_route'
  | 'method_not_allowed'
  | 'spec_changed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'internal';

export class DeploymentNotFoundError extends Error {
  constructor(readonly deploymentId: string) {
    super(`no deployment "${deploymentId}"`);
    this.name = 'DeploymentNotFoundError';
  }
}

export interface DeploymentTarget {
  /** e.g. 'local'. */
  readonly name: string;
  /** Creates or updates a deployment and resolves once its replicas answer; same spec twice → no change. */
  apply(spec: DeploymentSpec, opts?: ChangeOptions): Promise<DeploymentStatus>;
  /** Throws DeploymentNotFoundError for an unknown id. */
  status(id: string): Promise<DeploymentStatus>;
  list(): Promise<DeploymentStatus[]>;
  /** Changes the replica count in place (no replacement of running replicas). */
  scale(id: string, replicas: number): Promise<DeploymentStatus>;
  /** Changes replica counts, autoscaling or scale to zero, and nothing else; no replica is restarted. */
  setScaling(id: string, change: ScalingChange): Promise<DeploymentStatus>;
  /** Changes how requests are split between the deployment's revisions; no replica is restarted. */
  setTraffic(id: string, traffic: TrafficPolicy, opts?: ChangeOptions): Promise<DeploymentStatus>;
  /**
   * Sets a replica floor (above 0 it wakes a hibernated deployment). Optional: a target without it
   * (kubernetes and ec2 for now) is scaled reactively only, and the monitor says so.
   */
  setReplicaFloor?(id: string, floor: ReplicaFloor): Promise<DeploymentStatus>;
  /** Stops all replicas; the endpoint stays and the next request wakes the deployment. */
  hibernate(id: string): Promise<DeploymentStatus>;
  wake(id: string): Promise<DeploymentStatus>;
  /** Stops the replicas and removes the endpoint. Idempotent: an unknown id is not an error. */
  destroy(id: string): Promise<void>;
  /**
   * Prometheus text exposition of every live replica's metrics, each sample labelled
   * `replica="<pid>"` and `revision="<name>"` (empty while hibernated). Replica counters restart with each replica.
   */
  metrics(id: string): Promise<string>;
}
