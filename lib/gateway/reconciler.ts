/**
 * Converges a deployment's processes to its revision sets: for each revision, `desired` ready replicas
 * of its current launch plan. What is missing starts (and is ready) before anything it replaces is
 * retired. Retired replicas drain: out of routing at once, SIGTERM once their in-flight requests are
 * done or the drain deadline passed. Also supervision: a ready replica that exits unplanned is counted
 * as a restart and replaced, with backoff while replacing fails, and its exit (why: OOM-killed, a
 * signal, an exit code) goes into the deployment's events.
 */
import * as path from 'node:path';
import type { ReplicaEvent } from '../targets/deploymentTarget';
import { containerReplicaFromStandby, spawnContainerReplica } from './containerReplica';
import type { DeploymentRecord } from './deploymentStore';
import type { GatewayMetrics } from './gatewayMetrics';
import { replicaPlanKey } from './launchPlan';
import type { OperationQueue } from './operationQueue';
import { type Replica, spawnReplica, waitUntilReady } from './replicaProcess';
import type { ReplicaRuntimes } from './replicaRuntime';
import type { RevisionSet } from './revisionSet';
import type { StandbyContainer } from './standbyContainer';
import type { StandbyProcess } from './standbyProcess';

export interface ReconcilerContext {
  stateDir: string;
  readyTimeoutMs: number;
  stopGraceMs: number;
  /** How long a retired replica may take to finish its in-flight requests before SIGTERM. */
  drainTimeoutMs: number;
  metrics: GatewayMetrics;
  /** A pre-started process that the next replica start may use. */
  standby: StandbyProcess | undefined;
  /** A pre-started container that the next container replica of its plan may become. */
  standbyContainer: StandbyContainer | undefined;
  /** Whether an image's replicas run as containers (and under which runtime) or as processes. */
  runtimes: ReplicaRuntimes;
  /** Saves all records; resolves once they are on disk. */
  persist(): Promise<void>;
  log(message: string): void;
}

/** The deployment being converged (LocalDeployment). */
export interface Reconciled {
  readonly record: DeploymentRecord;
  readonly revisions: ReadonlyMap<string, RevisionSet>;
  readonly destroyed: boolean;
}

/**
 * Retired replicas finishing their requests. Wrapped in an object so that an operation in the queue
 * can hand it back without the queue waiting for it (an async function would adopt a bare promise).
 */
export interface Drain {
  done: Promise<void>;
}

export const NOTHING_TO_DRAIN: Drain = { done: Promise.resolve() };

const MAX_RESTART_BACKOFF_MS = 30_000;
const EVENTS_KEPT = 20;

export class Reconciler {
  /** Replicas that belong to the deployment and are not retired. */
  replicas: Replica[] = [];
  /** Replicas being drained and stopped. */
  readonly retiring = new Set<Replica>();
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private queued = false;
  /** Revisions whose fallback to plain processes is in the events already (once per gateway run). */
  private readonly fallbackNoted = new Set<string>();

  constructor(
    private readonly deployment: Reconciled,
    private readonly ops: OperationQueue,
    private readonly ctx: ReconcilerContext,
  ) {}

  private get id(): string {
    return this.deployment.record.id;
  }

  /** Each revision set's members from the replica list. */
  reindex(): void {
    const sets = this.deployment.revisions;
    for (const set of sets.values()) set.members = [];
    for (const r of this.replicas) sets.get(r.revision)?.members.push(r);
  }

  /** Forgets replicas that have exited. */
  prune(): void {
    this.replicas = this.replicas.filter((r) => !r.exited);
    this.reindex();
  }

  /**
   * Converges in the background: at once for scaling (delay 0), with backoff for crash restarts and
   * after failures. Calls made while one is pending collapse into it.
   */
  schedule(delayMs = this.backoffMs): void {
    if (this.deployment.destroyed) return;
    if (delayMs === 0 && !this.queued) {
      this.queued = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      this.runQueued();
      return;
    }
    if (this.timer || this.queued) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.queued) return;
      this.queued = true;
      this.runQueued();
    }, delayMs);
    this.timer.unref();
  }

  /** No more scheduled convergence (the deployment is deleted, or the gateway stops supervising). */
  cancelScheduled(): void {
    clearTimeout(this.timer);
  }

  private runQueued(): void {
    this.ops
      .run(async () => {
        this.queued = false;
        return this.reconcile();
      })
      .then(
        (drain) => {
          this.backoffMs = 0;
          void drain.done.then(() => this.ctx.persist().catch(() => undefined));
          return this.ctx.persist();
        },
        (err: Error) => {
          this.backoffMs = Math.min(MAX_RESTART_BACKOFF_MS, Math.max(500, this.backoffMs * 2));
          this.ctx.log(`deployment "${this.id}": reconcile failed (next try in ${this.backoffMs} ms): ${err.message}`);
          for (const s of this.deployment.revisions.values()) s.notifyReady();
          this.schedule();
        },
      );
  }

  /**
   * Converges the processes to the record (call only inside the operation queue): first starts what is
   * missing in every revision and waits until it is ready, then retires replicas of old plans, of
   * removed revisions and beyond the desired counts. Resolves to the drains of those retirements.
   */
  async reconcile(): Promise<Drain> {
    this.prune();
    const { record, revisions, destroyed } = this.deployment;
    if (record.state !== 'running' || destroyed) return this.retire(this.replicas);
    const sets = [...revisions.values()].sort((a, b) => b.held - a.held);
    for (const set of sets) {
      const key = replicaPlanKey(set.spec.plan);
      const current = set.members.filter((r) => r.record.planKey === key && !r.stopping);
      const missing = set.desired - current.length;
      if (missing > 0) await this.startReplicas(set, missing);
    }
    const retire = this.replicas.filter((r) => !this.deployment.revisions.has(r.revision));
    for (const set of this.deployment.revisions.values()) {
      const key = replicaPlanKey(set.spec.plan);
      const current = set.members.filter((r) => r.record.planKey === key);
      retire.push(...set.members.filter((r) => r.record.planKey !== key));
      // Keep the ready ones, then the busiest (fewer requests to wait for), then the oldest.
      current.sort(
        (a, b) =>
          Number(b.ready) - Number(a.ready) ||
          b.inFlight - a.inFlight ||
          a.record.startedAt.localeCompare(b.record.startedAt),
      );
      retire.push(...current.slice(set.desired));
    }
    return this.retire(retire);
  }

  /** Starts `count` replicas of `set`'s plan and resolves when all are ready; on failure none stays. */
  async startReplicas(set: RevisionSet, count: number): Promise<Replica[]> {
    const logDir = path.join(this.ctx.stateDir, 'gateway', 'logs', this.id);
    const started: Replica[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const replica = await this.spawn(set, logDir);
        this.supervise(replica);
        started.push(replica);
        this.replicas.push(replica);
      }
      this.reindex();
      // The pids go to disk while the replicas start (a gateway crash leaves no unknown process),
      // without making the first request wait for the write.
      const saved = this.ctx.persist();
      await Promise.all([
        saved,
        ...started.map((r) =>
          waitUntilReady(r, this.ctx.readyTimeoutMs).then(() => {
            if (this.deployment.revisions.get(set.name) === set) set.notifyReady();
          }),
        ),
      ]);
      this.ctx.log(
        `deployment "${this.id}" revision "${set.name}": started replica pid(s) ${started.map((r) => `${r.pid}:${r.port}${r.prestarted ? ' (pre-started)' : ''}${r.runtime === 'process' ? '' : ` (${r.runtime})`}`).join(', ')}`,
      );
      return started;
    } catch (err) {
      for (const r of started.filter((x) => x.exited && !x.stopping)) {
        this.recordEvent({ type: 'start-failed', revision: set.name, ...this.exitOf(r) });
      }
      await this.retire(started).done;
      await this.ctx.persist();
      throw new Error(`deployment "${this.id}": ${(err as Error).message}`);
    }
  }

  /**
   * A replica of `set`'s plan, as a container or as a process (ReplicaRuntimes decides). An image's
   * unpacked tree is checked against its seal first: one modified since its layers were verified
   * starts nothing (lib/oci/imageTree.ts).
   */
  private async spawn(set: RevisionSet, logDir: string): Promise<Replica> {
    const plan = set.spec.plan;
    const choice = await this.ctx.runtimes.choose(plan);
    if (plan.container) {
      try {
        await (await import('../oci/pull')).verifyPulledImageTree(plan.container.rootfs);
      } catch (err) {
        const runtime = choice.kind === 'container' ? choice.runtime.name : 'process';
        this.recordEvent({ type: 'start-failed', revision: set.name, runtime, reason: (err as Error).message });
        this.ctx.log(`deployment "${this.id}" revision "${set.name}": ${(err as Error).message}`);
        throw err;
      }
    }
    if (choice.kind === 'container') {
      const limits = this.ctx.runtimes.limitsOf(plan);
      const standby = this.ctx.standbyContainer;
      const taken = await standby?.take(plan);
      const replica = taken
        ? containerReplicaFromStandby(taken, plan, set.name)
        : await spawnContainerReplica(plan, {
            runtime: choice.runtime,
            limits,
            stateDir: this.ctx.stateDir,
            logDir,
            revision: set.name,
          });
      standby?.fillSoon(plan, choice.runtime, limits); // for the next cold start of this plan
      return replica;
    }
    if (choice.fallback && !this.fallbackNoted.has(set.name)) {
      this.fallbackNoted.add(set.name);
      this.recordEvent({ type: 'process-fallback', revision: set.name, runtime: 'process', reason: choice.reason });
    }
    return spawnReplica(plan, logDir, set.name, this.ctx.standby, path.join(this.ctx.stateDir, 'gateway', 'sockets'));
  }

  private exitOf(r: Replica): Pick<ReplicaEvent, 'pid' | 'runtime' | 'reason' | 'oomKilled'> {
    return {
      pid: r.pid,
      runtime: r.runtime,
      reason: r.exitReason ?? 'exited',
      ...(r.containerExit ? { oomKilled: r.containerExit.oomKilled } : {}),
    };
  }

  /** Adds to the deployment's recent events (kept in its record, so they survive a gateway restart). */
  private recordEvent(event: Omit<ReplicaEvent, 'at'>): void {
    const events = this.deployment.record.events;
    events.push({ at: new Date().toISOString(), ...event });
    if (events.length > EVENTS_KEPT) events.splice(0, events.length - EVENTS_KEPT);
  }

  /**
   * Takes replicas out of routing now; each is stopped (SIGTERM, then SIGKILL after the grace) once
   * its in-flight requests are done or the drain deadline passed. Resolves when all have exited.
   */
  retire(list: Replica[]): Drain {
    if (list.length === 0) return NOTHING_TO_DRAIN;
    for (const r of list) {
      r.stopping = true;
      this.retiring.add(r);
    }
    this.replicas = this.replicas.filter((r) => !list.includes(r));
    this.reindex();
    const done = Promise.all(
      list.map(async (r) => {
        if (r.ready && r.inFlight > 0) {
          const idle = await r.whenIdle(this.ctx.drainTimeoutMs);
          if (!idle)
            this.ctx.log(
              `deployment "${this.id}": replica pid ${r.pid} still had ${r.inFlight} request(s) in flight after ${this.ctx.drainTimeoutMs} ms; stopping it anyway`,
            );
        }
        await r.stop(this.ctx.stopGraceMs);
        this.retiring.delete(r);
      }),
    ).then(() => undefined);
    return { done };
  }

  /** Registers replicas found alive by a restarted gateway. */
  adopt(replicas: Replica[]): void {
    for (const r of replicas) {
      this.supervise(r);
      this.replicas.push(r);
    }
    this.reindex();
  }

  /** Liveness check for adopted replicas, which send no exit events. */
  checkAlive(): void {
    for (const r of [...this.replicas, ...this.retiring]) if (!r.exited) r.checkAlive();
  }

  /** Stops supervision without touching the processes (gateway shutdown: replicas keep serving). */
  detach(): void {
    clearTimeout(this.timer);
    for (const r of [...this.replicas, ...this.retiring]) r.onExit = undefined;
  }

  private supervise(replica: Replica): void {
    replica.onExit = (r) => this.onExit(r);
  }

  private onExit(replica: Replica): void {
    // Planned stops are not crashes; a replica that dies before it is ready fails its own start.
    if (replica.stopping || !replica.ready || this.deployment.destroyed) return;
    this.ctx.log(`deployment "${this.id}": replica pid ${replica.pid} ${replica.exitReason}; restarting it`);
    this.recordEvent({ type: 'exited', revision: replica.revision, ...this.exitOf(replica) });
    this.deployment.record.restarts++;
    this.ctx.metrics.restarts.labels(this.id).inc();
    this.schedule();
  }
}
