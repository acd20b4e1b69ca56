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
  replicas: number;
  /** What to run: a model image... */
  image?: ImageRef;
  /** ...or, on the local target only, a directory with ferry-models.json served by the repo's runtime. */
  modelDir?: string;
}

export type DeploymentState = 'running' | 'hibernated' | 'waking';

export interface ReplicaStatus {
  pid: number;
  port: number;
  startedAt: string;
  /** False while the replica is still starting. */
  ready: boolean;
}

export interface DeploymentStatus {
  id: string;
  model: string;
  state: DeploymentState;
  /** Base URL of the Open Inference Protocol API, e.g. http://127.0.0.1:8080/d/<id>. */
  endpoint: string;
  /** Replicas asked for; `replicas` lists the ones running now (none while hibernated). */
  desiredReplicas: number;
  replicas: ReplicaStatus[];
  image?: ImageRef & { digest?: string };
  modelDir?: string;
  createdAt: string;
  /** When the current run of replicas started (null while hibernated). */
  runningSince: string | null;
  lastRequestAt: string | null;
  /** Requests forwarded to replicas over the deployment's life (survives hibernation). */
  requestsServed: number;
  /** Times a request found the deployment hibernated and was held while replicas started. */
  coldStarts: number;
  /** How long the last wake took until the first replica was ready (ms). */
  lastWakeMs: number | null;
  /** Replicas restarted after they died unexpectedly. */
  restarts: number;
}

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
  apply(spec: DeploymentSpec): Promise<DeploymentStatus>;
  /** Throws DeploymentNotFoundError for an unknown id. */
  status(id: string): Promise<DeploymentStatus>;
  list(): Promise<DeploymentStatus[]>;
  /** Changes the replica count in place (no replacement of running replicas). */
  scale(id: string, replicas: number): Promise<DeploymentStatus>;
  /** Stops all replicas; the endpoint stays and the next request wakes the deployment. */
  hibernate(id: string): Promise<DeploymentStatus>;
  wake(id: string): Promise<DeploymentStatus>;
  /** Stops the replicas and removes the endpoint. Idempotent: an unknown id is not an error. */
  destroy(id: string): Promise<void>;
  /**
   * Prometheus text exposition of every live replica's metrics, each sample labelled
   * `replica="<pid>"` (empty while hibernated). Replica counters restart with each replica.
   */
  metrics(id: string): Promise<string>;
}
