/**
 * One deployment on the local target: its record, its replica processes, and the operations that
 * change them. Operations run one at a time (a small queue), so an apply, a wake started by traffic,
 * a hibernate and a crash restart never interleave. Everything converges through `reconcile`:
 * "running" means `replicas` ready replicas of the current launch plan and nothing else.
 */
import * as path from 'node:path';
import type { DeploymentState, DeploymentStatus } from '../targets/deploymentTarget';
import type { DeploymentRecord } from './deploymentStore';
import type { LaunchPlan } from './launchPlan';
import { spawnReplica, waitUntilReady, type Replica } from './replicaProcess';

export interface LocalDeploymentContext {
  stateDir: string;
  gatewayUrl: string;
  readyTimeoutMs: number;
  stopGraceMs: number;
  /** Saves all records; resolves once they are on disk. */
  persist(): Promise<void>;
  log(message: string): void;
}

/** What apply may change. */
export type DeploymentSpecFields = Pick<DeploymentRecord, 'model' | 'replicas' | 'image' | 'modelDir' | 'plan'>;

const MAX_RESTART_BACKOFF_MS = 30_000;

export class LocalDeployment {
  replicas: Replica[] = [];
  destroyed = false;
  private queue: Promise<unknown> = Promise.resolve();
  private waking: Promise<void> | undefined;
  private nextReplica = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartBackoffMs = 0;

  constructor(
    readonly record: DeploymentRecord,
    private readonly ctx: LocalDeploymentContext,
  ) {}

  get id(): string {
    return this.record.id;
  }

  get state(): DeploymentState {
    return this.waking ? 'waking' : this.record.state;
  }

  /** Runs `op` after every operation queued before it. */
  private exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.catch(() => undefined).then(op);
    this.queue = run;
    return run;
  }

  status(): DeploymentStatus {
    const r = this.record;
    return {
      id: r.id,
      model: r.model,
      state: this.state,
      endpoint: `${this.ctx.gatewayUrl}/d/${encodeURIComponent(r.id)}`,
      desiredReplicas: r.replicas,
      replicas: this.liveReplicas().map((x) => ({ pid: x.pid, port: x.port, startedAt: x.record.startedAt, ready: x.ready })),
      ...(r.image ? { image: { ...r.image, ...(r.plan.digest ? { digest: r.plan.digest } : {}) } } : {}),
      ...(r.modelDir ? { modelDir: r.modelDir } : {}),
      createdAt: r.createdAt,
      runningSince: r.runningSince,
      lastRequestAt: r.lastRequestAt,
      requestsServed: r.requestsServed,
      coldStarts: r.coldStarts,
      lastWakeMs: r.lastWakeMs,
      restarts: r.restarts,
    };
  }

  /** The record as stored: with the pids of every replica process that may still be running. */
  snapshot(): DeploymentRecord {
    return { ...this.record, live: this.replicas.filter((x) => !x.exited).map((x) => x.record) };
  }

  private liveReplicas(): Replica[] {
    return this.replicas.filter((x) => !x.exited && !x.stopping);
  }

  /** Round-robin over ready replicas; undefined when none is ready. */
  pickReplica(): Replica | undefined {
    const n = this.replicas.length;
    for (let i = 0; i < n; i++) {
      const candidate = this.replicas[(this.nextReplica + i) % n];
      if (candidate.ready && !candidate.stopping && !candidate.exited) {
        this.nextReplica = (this.nextReplica + i + 1) % n;
        return candidate;
      }
    }
    return undefined;
  }

  /** Registers replicas found alive by a restarted gateway. */
  adopt(replicas: Replica[]): void {
    for (const r of replicas) {
      r.onExit = (x) => this.onReplicaExit(x);
      this.replicas.push(r);
    }
  }

  /** Applies a new or changed spec: starts new replicas first, then stops the ones they replace. */
  apply(fields: DeploymentSpecFields): Promise<void> {
    return this.exclusive(async () => {
      const previous: DeploymentSpecFields = { model: this.record.model, replicas: this.record.replicas, image: this.record.image, modelDir: this.record.modelDir, plan: this.record.plan };
      const previousState = this.record.state;
      Object.assign(this.record, fields);
      this.record.state = 'running';
      try {
        await this.reconcile();
      } catch (err) {
        // Keep serving the previous spec (its replicas were not touched).
        Object.assign(this.record, previous);
        this.record.state = previousState;
        await this.ctx.persist();
        throw err;
      }
      this.record.runningSince ??= new Date().toISOString();
      await this.ctx.persist();
    });
  }

  /** True when applying `fields` would change nothing that runs. */
  isUnchanged(fields: DeploymentSpecFields): boolean {
    return fields.plan.key === this.record.plan.key && fields.replicas === this.record.replicas && fields.model === this.record.model;
  }

  hibernate(): Promise<void> {
    return this.exclusive(async () => {
      this.record.state = 'hibernated';
      this.record.runningSince = null;
      await this.reconcile();
      await this.ctx.persist();
    });
  }

  /**
   * Makes sure a replica is ready, starting replicas if the deployment is hibernated (or lost them
   * all). Concurrent callers share one wake. `byRequest` counts a cold start.
   */
  ensureServing(byRequest: boolean): Promise<void> {
    if (this.pickReplicaAvailable()) return Promise.resolve();
    if (this.waking) return this.waking;
    const started = Date.now();
    const wake = this.exclusive(async () => {
      if (this.destroyed) throw new Error(`deployment "${this.id}" was deleted`);
      const wasHibernated = this.record.state === 'hibernated';
      this.record.state = 'running';
      try {
        await this.reconcile();
      } catch (err) {
        this.record.state = 'hibernated'; // the next request tries again
        this.record.runningSince = null;
        await this.ctx.persist();
        throw err;
      }
      this.record.runningSince ??= new Date().toISOString();
      if (wasHibernated) {
        this.record.lastWakeMs = Date.now() - started;
        if (byRequest) this.record.coldStarts++;
        this.ctx.log(`deployment "${this.id}" woke in ${this.record.lastWakeMs} ms${byRequest ? ' (held a request)' : ''}`);
      }
      await this.ctx.persist();
    }).finally(() => {
      this.waking = undefined;
    });
    this.waking = wake;
    wake.catch(() => undefined); // callers that gave up waiting must not leave an unhandled rejection
    return wake;
  }

  private pickReplicaAvailable(): boolean {
    return this.replicas.some((r) => r.ready && !r.stopping && !r.exited);
  }

  destroy(): Promise<void> {
    return this.exclusive(async () => {
      this.destroyed = true;
      clearTimeout(this.restartTimer);
      await this.stopReplicas(this.replicas);
    });
  }

  /** Stops supervision without touching the processes (gateway shutdown: replicas keep serving). */
  detach(): void {
    clearTimeout(this.restartTimer);
    for (const r of this.replicas) r.onExit = undefined;
  }

  /** Liveness check for adopted replicas, which send no exit events. */
  checkReplicas(): void {
    for (const r of this.replicas) if (!r.exited) r.checkAlive();
  }

  private onReplicaExit(replica: Replica): void {
    // Planned stops are not crashes; a replica that dies before it is ready fails its own start.
    if (replica.stopping || !replica.ready || this.destroyed) return;
    this.ctx.log(`deployment "${this.id}": replica pid ${replica.pid} ${replica.exitReason}; restarting it`);
    this.record.restarts++;
    this.scheduleReconcile();
  }

  /** Converges in the background, retrying with backoff (crash restarts, adoption top-ups). */
  scheduleReconcile(): void {
    if (this.restartTimer || this.destroyed) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.exclusive(() => this.reconcile()).then(
        () => {
          this.restartBackoffMs = 0;
          return this.ctx.persist();
        },
        (err: Error) => {
          this.restartBackoffMs = Math.min(MAX_RESTART_BACKOFF_MS, Math.max(500, this.restartBackoffMs * 2));
          this.ctx.log(`deployment "${this.id}": restart failed (next try in ${this.restartBackoffMs} ms): ${err.message}`);
          this.scheduleReconcile();
        },
      );
    }, this.restartBackoffMs);
    this.restartTimer.unref();
  }

  /** Converges the processes to the record: call only inside `exclusive`. */
  private async reconcile(): Promise<void> {
    this.replicas = this.replicas.filter((r) => !r.exited);
    if (this.record.state !== 'running' || this.destroyed) {
      await this.stopReplicas(this.replicas);
      return;
    }
    const current = this.replicas.filter((r) => r.record.planKey === this.record.plan.key && !r.stopping);
    const missing = this.record.replicas - current.length;
    const started = missing > 0 ? await this.startReplicas(missing, this.record.plan) : [];
    const keep = new Set([...current.slice(0, this.record.replicas), ...started]);
    await this.stopReplicas(this.replicas.filter((r) => !keep.has(r)));
  }

  private async startReplicas(count: number, plan: LaunchPlan): Promise<Replica[]> {
    const logDir = path.join(this.ctx.stateDir, 'gateway', 'logs', this.id);
    const started: Replica[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const replica = await spawnReplica(plan, logDir);
        replica.onExit = (x) => this.onReplicaExit(x);
        started.push(replica);
        this.replicas.push(replica);
      }
      await this.ctx.persist(); // pids are on disk before we wait: a gateway crash leaves no unknown process
      await Promise.all(started.map((r) => waitUntilReady(r, this.ctx.readyTimeoutMs)));
      this.ctx.log(`deployment "${this.id}": started replica pid(s) ${started.map((r) => `${r.pid}:${r.port}`).join(', ')}`);
      return started;
    } catch (err) {
      await this.stopReplicas(started);
      await this.ctx.persist();
      throw new Error(`deployment "${this.id}": ${(err as Error).message}`);
    }
  }

  private async stopReplicas(list: Replica[]): Promise<void> {
    if (list.length === 0) return;
    await Promise.all(list.map((r) => r.stop(this.ctx.stopGraceMs)));
    this.replicas = this.replicas.filter((r) => !list.includes(r));
  }
}
