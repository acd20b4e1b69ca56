/**
 * One revision's replica set and routing state: which of its replicas gets the next request, the
 * requests in flight and held (the autoscaler's signal), and the desired count the reconciler
 * converges to.
 */
import { performance } from 'node:perf_hooks';
import { type AutoscalingSettings, ConcurrencyAutoscaler } from './autoscaler';
import type { DeploymentRecord, RevisionRecord } from './deploymentStore';
import type { Replica } from './replicaProcess';

/** `n` within the autoscaler's min/max; `n` itself without autoscaling. */
export function withinAutoscalingBounds(n: number, settings: AutoscalingSettings | null): number {
  return settings ? Math.min(settings.maxReplicas, Math.max(settings.minReplicas, n)) : n;
}

/** The count a revision runs when (re)started: its own or the deployment's, within autoscaling bounds. */
export function initialReplicas(
  spec: RevisionRecord,
  deployment: Pick<DeploymentRecord, 'replicas' | 'autoscaling'>,
): number {
  return withinAutoscalingBounds(spec.replicas ?? deployment.replicas, deployment.autoscaling);
}

/**
 * `S`: what the set serves — a local revision's record (its launch plan), or for replicas someone
 * else runs (remoteDeployment.ts) just its name.
 */
export class RevisionSet<S extends { name: string } = RevisionRecord> {
  /** Replicas of this revision that are not retired (starting, ready, or exited and not yet pruned). */
  members: Replica[] = [];
  desired: number;
  inFlight = 0;
  held = 0;
  autoscaler: ConcurrencyAutoscaler | undefined;
  private next = 0;
  private readyWaiters: Array<() => void> = [];

  constructor(
    public spec: S,
    desired: number,
  ) {
    this.desired = desired;
  }

  get name(): string {
    return this.spec.name;
  }

  /**
   * A ready replica with the fewest requests in flight (round-robin among equals), already counted as
   * in flight; undefined when none is ready. Counting happens in the same tick as the choice, so a
   * drain that starts later always waits for this request.
   */
  pick(): Replica | undefined {
    const n = this.members.length;
    let best: Replica | undefined;
    let bestIndex = 0;
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      const r = this.members[index];
      if (r.routable && (!best || r.inFlight < best.inFlight)) {
        best = r;
        bestIndex = index;
        if (r.inFlight === 0) break;
      }
    }
    if (!best) return undefined;
    this.next = (bestIndex + 1) % n;
    best.inFlight++;
    this.inFlight++;
    this.levelChanged();
    return best;
  }

  /** The request given `replica` by `pick` is over. */
  release(replica: Replica): void {
    replica.release();
    this.inFlight--;
    this.levelChanged();
  }

  levelChanged(): void {
    this.autoscaler?.setConcurrency(this.inFlight + this.held, performance.now());
  }

  /** Autoscaling off, on, or with new settings; the same settings keep the autoscaler and its history. */
  useAutoscaling(settings: AutoscalingSettings | null): void {
    if (!settings) {
      this.autoscaler = undefined;
      return;
    }
    if (this.autoscaler && JSON.stringify(this.autoscaler.settings) === JSON.stringify(settings)) return;
    // Seeded with the running count, so new settings lower it only after the scale-down delay.
    this.autoscaler = new ConcurrencyAutoscaler(settings, performance.now(), this.desired);
    this.levelChanged();
  }

  hasRoutable(): boolean {
    return this.members.some((r) => r.routable);
  }

  readyCount(): number {
    let n = 0;
    for (const r of this.members) if (r.routable) n++;
    return n;
  }

  /** Resolves the next time a replica of this revision becomes ready (or the deployment gives up). */
  nextReady(): Promise<void> {
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  notifyReady(): void {
    for (const wake of this.readyWaiters.splice(0)) wake();
  }
}
