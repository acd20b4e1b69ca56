/**
 * What the kubernetes target reports when a cluster refuses or a rollout fails: retrying the same
 * change does not help (the deploy stage makes both non-retryable), so they say why for people.
 */

/** An API server's refusal, with its reason (e.g. RBAC's "… cannot create deployments …"). */
export class ClusterRequestError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ClusterRequestError';
  }
}

/** A rollout that failed (ImagePullBackOff, CrashLoopBackOff, Unschedulable, …) or timed out; `reason` is the pod's. */
export class RolloutFailedError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'RolloutFailedError';
  }
}
