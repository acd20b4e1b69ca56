/**
 * Holds a request while its revision has no ready replica (the deployment is waking from zero, the
 * revision is scaling up or replacing a crashed replica), the way Knative's activator does: a held
 * request counts as demand for the autoscaler, and is given a replica the moment one is ready.
 */
import { performance } from 'node:perf_hooks';
import type { GatewayMetrics } from './gatewayMetrics';
import type { Replica } from './replicaProcess';
import type { RevisionSet } from './revisionSet';

/** Any revision's set: a local one, or one of remote endpoints. */
type AnySet = RevisionSet<{ name: string }>;

/** Why a held request could not be given a replica. */
export interface HoldFailure {
  reason: 'hold_timeout' | 'wake_failed' | 'client_gone';
  message: string;
}

/** What holding needs of a deployment (LocalDeployment). */
export interface Activatable {
  readonly id: string;
  readonly destroyed: boolean;
  /** The set serving revision `name` now; the first revision's when `name` was removed. */
  liveSet(name: string): AnySet;
  /** Resolves when `set` has a ready replica: wakes a hibernated deployment, or has a lost replica replaced. */
  ensureCapacity(set: AnySet, byRequest: boolean): Promise<void>;
}

/**
 * Holds a request until `set` has a ready replica (waking the deployment from zero if needed), then
 * returns that replica, already counted as in flight on the set returned with it; or why not, after
 * `timeoutMs`. If the revision is removed meanwhile, the request moves to the first revision.
 */
export async function holdForReplica(
  deployment: Activatable,
  set: AnySet,
  timeoutMs: number,
  clientGone: Promise<void>,
  metrics: GatewayMetrics,
): Promise<{ replica: Replica; set: AnySet } | HoldFailure> {
  const started = performance.now();
  let current = set;
  current.held++;
  current.levelChanged();
  metrics.held.labels(deployment.id, set.name).inc();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    for (;;) {
      const live = deployment.liveSet(current.name);
      if (live !== current) {
        current.held--;
        current.levelChanged();
        current = live;
        current.held++;
        current.levelChanged();
      }
      const replica = current.pick();
      if (replica) return { replica, set: current };
      const capacity = deployment.ensureCapacity(current, true).then(
        () => 'ok' as const,
        (err: Error) => err,
      );
      const outcome = await Promise.race([
        capacity,
        current.nextReady().then(() => 'ok' as const),
        timedOut,
        clientGone.then(() => 'gone' as const),
      ]);
      if (outcome === 'timeout') {
        return {
          reason: 'hold_timeout',
          message: `deployment "${deployment.id}" is waking up and was not ready within ${timeoutMs} ms; retry shortly`,
        };
      }
      if (outcome === 'gone') return { reason: 'client_gone', message: 'the client closed the connection' };
      if (outcome instanceof Error)
        return {
          reason: 'wake_failed',
          message: `deployment "${deployment.id}" could not be woken: ${outcome.message}`,
        };
      if (deployment.destroyed) return { reason: 'wake_failed', message: `deployment "${deployment.id}" was deleted` };
    }
  } finally {
    clearTimeout(timer);
    current.held--;
    current.levelChanged();
    metrics.holdDuration.labels(deployment.id).observe((performance.now() - started) / 1000);
  }
}
