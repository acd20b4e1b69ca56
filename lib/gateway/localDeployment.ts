/**
 * One deployment on the local target: its record, its revisions (each a replica set with its own
 * launch plan, desired count and optional autoscaler), the traffic router between them, and the
 * operations that change its processes.
 *
 * Operations that start or stop processes run one at a time (a small queue), so an apply, a wake
 * started by traffic, an autoscaling step, a hibernate and a crash restart never interleave. Everything
 * converges through `reconcile`: for each revision, `desired` ready replicas of its current plan.
 * Replicas leave by draining: they stop getting requests at once, and are sent SIGTERM only when
 * their in-flight requests are done (or a deadline passed). Drains run outside the queue, so a wake
 * never waits behind a slow request on a replica being retired.
 */

import type * as http from 'node:http';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type {
  DeploymentSpec,
  DeploymentState,
  DeploymentStatus,
  ReplicaStatus,
  RevisionStatus,
  ScaleEvent,
} from '../targets/deploymentTarget';
import { type AutoscalingSettings, ConcurrencyAutoscaler } from './autoscaler';
import { DEFAULT_REVISION } from './deploymentSpec';
import type { DeploymentRecord, RevisionRecord } from './deploymentStore';
import type { GatewayMetrics } from './gatewayMetrics';
import { type Replica, spawnReplica, waitUntilReady } from './replicaProcess';
import type { StandbyProcess } from './standbyProcess';
import { TrafficRouter } from './trafficPolicy';

export interface LocalDeploymentContext {
  stateDir: string;
  gatewayUrl: string;
  readyTimeoutMs: number;
  stopGraceMs: number;
  /** How long a retired replica may take to finish its in-flight requests before SIGTERM. */
  drainTimeoutMs: number;
  metrics: GatewayMetrics;
  /** A pre-started process that the next replica start may use. */
  standby: StandbyProcess | undefined;
  /** Saves all records; resolves once they are on disk. */
  persist(): Promise<void>;
  log(message: string): void;
  /** Random per gateway process: the first part of every specVersion, so versions never repeat across restarts. */
  epoch: string;
}

/** What apply may change. */
export type DeploymentSpecFields = Pick<
  DeploymentRecord,
  'model' | 'replicas' | 'revisions' | 'traffic' | 'autoscaling' | 'scaleToZeroAfterMs'
>;

/** Why a held request could not be given a replica. */
export interface HoldFailure {
  reason: 'hold_timeout' | 'wake_failed' | 'client_gone';
  message: string;
}

/**
 * Retired replicas finishing their requests. Wrapped in an object so that an operation in the queue
 * can hand it back without the queue waiting for it (an async function would adopt a bare promise).
 */
interface Drain {
  done: Promise<void>;
}

const MAX_RESTART_BACKOFF_MS = 30_000;
const SCALE_EVENTS_KEPT = 20;

/** One revision's replica set and routing state. */
export class RevisionSet {
  /** Replicas of this revision that are not retired (starting, ready, or exited and not yet pruned). */
  members: Replica[] = [];
  desired: number;
  inFlight = 0;
  held = 0;
  autoscaler: ConcurrencyAutoscaler | undefined;
  private next = 0;
  private readyWaiters: Array<() => void> = [];

  constructor(
    public spec: RevisionRecord,
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

export class LocalDeployment {
  /** Replicas that belong to the deployment and are not retired. */
  replicas: Replica[] = [];
  /** Replicas being drained and stopped. */
  readonly retiring = new Set<Replica>();
  revisions = new Map<string, RevisionSet>();
  router: TrafficRouter;
  destroyed = false;
  scaleEvents: ScaleEvent[] = [];
  /** Bumped by every change of the spec (apply, traffic): `specVersion` in the status, checked by If-Match. */
  private generation = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waking: Promise<void> | undefined;
  private hibernating = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartBackoffMs = 0;
  private reconcileQueued = false;
  /** Operations queued or running: no idle scale-to-zero while one is. */
  private operations = 0;
  /** Epoch ms of the last request start or end, or of the last wake: the idle clock. */
  private lastActivityMs: number;
  private lastRequestMs: number | null;

  constructor(
    readonly record: DeploymentRecord,
    private readonly ctx: LocalDeploymentContext,
  ) {
    this.lastRequestMs = record.lastRequestAt ? Date.parse(record.lastRequestAt) : null;
    this.lastActivityMs = Math.max(
      this.lastRequestMs ?? 0,
      record.runningSince ? Date.parse(record.runningSince) : 0,
      Date.now(),
    );
    this.syncRevisionSets(true);
    this.router = new TrafficRouter(
      record.traffic,
      record.revisions.map((r) => r.name),
    );
  }

  get id(): string {
    return this.record.id;
  }

  /** 'waking' until the wake's first replica is ready (the rest may still be starting). */
  get state(): DeploymentState {
    if (this.waking && ![...this.revisions.values()].some((s) => s.hasRoutable())) return 'waking';
    return this.record.state;
  }

  /** Runs `op` after every operation queued before it. */
  private exclusive<T>(op: () => Promise<T>): Promise<T> {
    this.operations++;
    const run = this.queue.catch(() => undefined).then(op);
    this.queue = run;
    const done = () => {
      this.operations--;
    };
    run.then(done, done);
    return run;
  }

  // ---- revisions and desired counts ----

  /** The count a revision runs when (re)started: its own or the deployment's, within autoscaling bounds. */
  private initialReplicas(spec: RevisionRecord): number {
    const n = spec.replicas ?? this.record.replicas;
    const a = this.record.autoscaling;
    return a ? Math.min(a.maxReplicas, Math.max(a.minReplicas, n)) : n;
  }

  /**
   * Makes the revision sets match the record: new sets for new revisions, specs refreshed, removed
   * ones dropped (their replicas are retired by the next reconcile). `resetDesired`: every set's
   * desired count back to its initial value (or 0 while hibernated).
   */
  private syncRevisionSets(resetDesired: boolean, reason?: string): void {
    const running = this.record.state === 'running';
    const a = this.record.autoscaling;
    const next = new Map<string, RevisionSet>();
    for (const spec of this.record.revisions) {
      let set = this.revisions.get(spec.name);
      const initial = running ? this.initialReplicas(spec) : 0;
      if (!set) {
        set = new RevisionSet(spec, reason ? 0 : initial);
        if (reason) this.setDesired(set, initial, reason);
      } else {
        set.spec = spec;
        let desired = set.desired;
        if (resetDesired || !a) desired = initial;
        else if (running) desired = Math.min(a.maxReplicas, Math.max(a.minReplicas, set.desired));
        if (reason) this.setDesired(set, desired, reason);
        else set.desired = desired;
      }
      this.syncAutoscaler(set, a);
      next.set(spec.name, set);
    }
    for (const [name, dropped] of this.revisions) if (next.get(name) !== dropped) dropped.notifyReady(); // held requests move on
    this.revisions = next;
    this.reindex();
  }

  private syncAutoscaler(set: RevisionSet, settings: AutoscalingSettings | null): void {
    if (!settings) {
      set.autoscaler = undefined;
      return;
    }
    if (set.autoscaler && JSON.stringify(set.autoscaler.settings) === JSON.stringify(settings)) return;
    // Seeded with the running count, so new settings lower it only after the scale-down delay.
    set.autoscaler = new ConcurrencyAutoscaler(settings, performance.now(), set.desired);
    set.levelChanged();
  }

  private reindex(): void {
    for (const set of this.revisions.values()) set.members = [];
    for (const r of this.replicas) this.revisions.get(r.revision)?.members.push(r);
  }

  private setDesired(set: RevisionSet, to: number, reason: string): void {
    const from = set.desired;
    set.desired = to;
    if (from === to) return;
    const event: ScaleEvent = { at: new Date().toISOString(), revision: set.name, from, to, reason };
    this.scaleEvents.push(event);
    if (this.scaleEvents.length > SCALE_EVENTS_KEPT) this.scaleEvents.shift();
    this.ctx.metrics.scaleEvents.labels(this.id, set.name, to > from ? 'up' : 'down', reason).inc();
    if (reason === 'stable' || reason === 'panic')
      this.ctx.log(`deployment "${this.id}" revision "${set.name}": ${from} → ${to} replicas (${reason})`);
  }

  // ---- the request path ----

  /** The revision that serves a request with these headers. */
  route(headers: http.IncomingHttpHeaders): RevisionSet {
    return this.revisions.get(this.router.choose(headers))!;
  }

  /** A request arrived or ended: the idle clock restarts. */
  touch(): void {
    this.lastActivityMs = this.lastRequestMs = Date.now();
  }

  /**
   * Holds a request until `set` has a ready replica (waking the deployment from zero if needed), then
   * returns that replica, already counted as in flight on the set returned with it; or why not, after
   * `timeoutMs`. If the revision is removed meanwhile, the request moves to the first revision.
   */
  async hold(
    set: RevisionSet,
    timeoutMs: number,
    clientGone: Promise<void>,
  ): Promise<{ replica: Replica; set: RevisionSet } | HoldFailure> {
    const started = performance.now();
    let current = set;
    current.held++;
    current.levelChanged();
    this.ctx.metrics.held.labels(this.id, set.name).inc();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    try {
      for (;;) {
        const live = this.revisions.get(current.name) ?? this.revisions.get(this.record.revisions[0].name)!;
        if (live !== current) {
          current.held--;
          current.levelChanged();
          current = live;
          current.held++;
          current.levelChanged();
        }
        const replica = current.pick();
        if (replica) return { replica, set: current };
        const capacity = this.ensureCapacity(current, true).then(
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
            message: `deployment "${this.id}" is waking up and was not ready within ${timeoutMs} ms; retry shortly`,
          };
        }
        if (outcome === 'gone') return { reason: 'client_gone', message: 'the client closed the connection' };
        if (outcome instanceof Error)
          return { reason: 'wake_failed', message: `deployment "${this.id}" could not be woken: ${outcome.message}` };
        if (this.destroyed) return { reason: 'wake_failed', message: `deployment "${this.id}" was deleted` };
      }
    } finally {
      clearTimeout(timer);
      current.held--;
      current.levelChanged();
      this.ctx.metrics.holdDuration.labels(this.id).observe((performance.now() - started) / 1000);
    }
  }

  /**
   * Resolves when `set` has a ready replica: wakes a hibernated deployment (one wake shared by all
   * callers), or makes sure a running one is replacing what it lost.
   */
  ensureCapacity(set: RevisionSet, byRequest: boolean): Promise<void> {
    if (set.hasRoutable()) return Promise.resolve();
    if (this.destroyed) return Promise.reject(new Error(`deployment "${this.id}" was deleted`));
    if (this.waking || this.record.state === 'hibernated') return this.wake(set, byRequest);
    // Running, but this revision has no ready replica (crash, or its replicas are still starting).
    if (set.desired === 0) this.setDesired(set, this.initialReplicas(set.spec), 'wake');
    this.scheduleReconcile();
    return set.nextReady();
  }

  /**
   * Wakes from zero. Fast path: start one replica of the revision the request needs, alone (on a
   * small machine parallel starts slow each other down), and release held requests the moment it is
   * ready; the other replicas and revisions start right behind it.
   */
  private wake(set: RevisionSet, byRequest: boolean): Promise<void> {
    if (this.waking) return this.waking;
    const started = performance.now();
    const wake = this.exclusive(async () => {
      if (this.destroyed) throw new Error(`deployment "${this.id}" was deleted`);
      const wasHibernated = this.record.state === 'hibernated';
      if (!wasHibernated && set.hasRoutable()) return;
      this.record.state = 'running';
      for (const s of this.revisions.values()) {
        if (s.desired === 0) this.setDesired(s, this.initialReplicas(s.spec), 'wake');
        s.autoscaler?.reset();
      }
      this.replicas = this.replicas.filter((r) => !r.exited);
      this.reindex();
      try {
        if (!set.members.some((r) => !r.stopping && r.record.planKey === set.spec.plan.key))
          await this.startReplicas(set, 1);
      } catch (err) {
        this.record.state = 'hibernated'; // the next request tries again
        this.record.runningSince = null;
        for (const s of this.revisions.values()) s.desired = 0;
        await this.ctx.persist();
        throw err;
      }
      this.record.runningSince ??= new Date().toISOString();
      this.lastActivityMs = Date.now();
      if (wasHibernated) {
        const ms = performance.now() - started;
        this.record.lastWakeMs = Math.round(ms);
        this.ctx.metrics.wakeDuration.labels(this.id).observe(ms / 1000);
        if (byRequest) {
          this.record.coldStarts++;
          this.ctx.metrics.coldStarts.labels(this.id).inc();
        }
        this.ctx.log(
          `deployment "${this.id}" woke in ${this.record.lastWakeMs} ms${byRequest ? ' (held a request)' : ''}`,
        );
      }
      await this.ctx.persist();
    }).finally(() => {
      this.waking = undefined;
    });
    this.waking = wake;
    wake.then(
      () => this.scheduleReconcile(0), // the rest of the replicas
      () => {
        for (const s of this.revisions.values()) s.notifyReady(); // held requests see the failure
      },
    );
    return wake;
  }

  // ---- operations ----

  /**
   * Applies a new or changed spec: new replicas first, then the ones they replace are drained.
   * `keepHibernated`: a hibernated deployment only records the change (a scaling change does not wake it).
   */
  async apply(fields: DeploymentSpecFields, opts: { keepHibernated?: boolean } = {}): Promise<void> {
    this.generation++;
    const drain = await this.exclusive(async (): Promise<Drain> => {
      if (opts.keepHibernated && this.record.state === 'hibernated') {
        Object.assign(this.record, fields);
        this.syncRevisionSets(false); // desired counts stay 0; the wake starts the new ones
        this.router = new TrafficRouter(
          this.record.traffic,
          this.record.revisions.map((r) => r.name),
        );
        await this.ctx.persist();
        return { done: Promise.resolve() };
      }
      const previous = {
        fields: this.specFields(),
        state: this.record.state,
        sets: new Map(this.revisions),
        setState: [...this.revisions.values()].map((s) => ({
          set: s,
          desired: s.desired,
          spec: s.spec,
          autoscaler: s.autoscaler,
        })),
      };
      const wasRunning = this.record.state === 'running';
      Object.assign(this.record, fields);
      this.record.state = 'running';
      // A running revision keeps its count: a fixed count is the new `replicas` anyway, and an
      // autoscaled one keeps what its autoscaler wanted (within the new min/max) rather than falling
      // back to the starting count, which would drain replicas serving a load.
      this.syncRevisionSets(!wasRunning, 'apply');
      this.router = new TrafficRouter(
        this.record.traffic,
        this.record.revisions.map((r) => r.name),
      );
      try {
        const drained = await this.reconcile();
        this.record.runningSince ??= new Date().toISOString();
        this.lastActivityMs = Date.now(); // the idle clock starts when the replicas are ready
        await this.ctx.persist();
        return drained;
      } catch (err) {
        // Keep serving the previous spec: its replicas were not touched; retire what was started.
        Object.assign(this.record, previous.fields);
        this.record.state = previous.state;
        this.revisions = previous.sets;
        for (const p of previous.setState)
          Object.assign(p.set, { desired: p.desired, spec: p.spec, autoscaler: p.autoscaler });
        this.reindex();
        this.router = new TrafficRouter(
          this.record.traffic,
          this.record.revisions.map((r) => r.name),
        );
        const cleanup = await this.reconcile().catch((): Drain => ({ done: Promise.resolve() }));
        await this.ctx.persist();
        void cleanup.done.then(() => this.ctx.persist());
        throw err;
      }
    });
    await drain.done;
    await this.ctx.persist();
  }

  specFields(): DeploymentSpecFields {
    const r = this.record;
    return {
      model: r.model,
      replicas: r.replicas,
      revisions: r.revisions,
      traffic: r.traffic,
      autoscaling: r.autoscaling,
      scaleToZeroAfterMs: r.scaleToZeroAfterMs,
    };
  }

  /** True when applying `fields` would change nothing (the same launch plans, counts and policies). */
  isUnchanged(fields: DeploymentSpecFields): boolean {
    const canonical = (f: DeploymentSpecFields) =>
      JSON.stringify({
        ...f,
        revisions: f.revisions.map((r) => ({ name: r.name, key: r.plan.key, replicas: r.replicas ?? null })),
      });
    return canonical(fields) === canonical(this.specFields());
  }

  /** Replaces the launch plans stored for unchanged revisions (e.g. a faster way to start the same thing). */
  refreshPlans(revisions: RevisionRecord[]): void {
    for (const r of revisions) {
      const mine = this.record.revisions.find((x) => x.name === r.name);
      if (mine && mine.plan.key === r.plan.key) mine.plan = r.plan;
    }
  }

  /** Changes only the traffic policy: effective from the next request, nothing restarts. */
  setTraffic(traffic: DeploymentRecord['traffic']): Promise<void> {
    this.generation++;
    this.record.traffic = traffic;
    this.router = new TrafficRouter(
      traffic,
      this.record.revisions.map((r) => r.name),
    );
    return this.ctx.persist();
  }

  /** Stops every replica (after draining); the next request wakes the deployment. */
  async hibernate(reason: 'hibernate' | 'idle' = 'hibernate'): Promise<void> {
    const drain = await this.exclusive(async () => {
      this.record.state = 'hibernated';
      this.record.runningSince = null;
      for (const set of this.revisions.values()) this.setDesired(set, 0, reason);
      if (reason === 'idle')
        this.ctx.log(`deployment "${this.id}": idle for ${this.record.scaleToZeroAfterMs} ms, scaling to zero`);
      const drained = await this.reconcile();
      await this.ctx.persist();
      return drained;
    });
    await drain.done;
    await this.ctx.persist();
  }

  /** POST /wake: wakes from zero and waits until every revision runs its desired replicas. */
  async wakeAll(): Promise<void> {
    const first = this.revisions.get(this.record.revisions[0].name)!;
    await this.ensureCapacity(first, false);
    const drain = await this.exclusive(() => this.reconcile());
    void drain.done.then(() => this.ctx.persist());
    await this.ctx.persist();
  }

  /** Stops every replica (after draining) and supervision; resolves when they have exited. */
  async destroy(): Promise<void> {
    const drain = await this.exclusive(async (): Promise<Drain> => {
      this.destroyed = true;
      clearTimeout(this.restartTimer);
      for (const set of this.revisions.values()) set.notifyReady();
      return this.retire(this.replicas);
    });
    await drain.done;
  }

  /** Stops supervision without touching the processes (gateway shutdown: replicas keep serving). */
  detach(): void {
    clearTimeout(this.restartTimer);
    for (const r of [...this.replicas, ...this.retiring]) r.onExit = undefined;
  }

  /** Liveness check for adopted replicas, which send no exit events. */
  checkReplicas(): void {
    for (const r of [...this.replicas, ...this.retiring]) if (!r.exited) r.checkAlive();
  }

  /** Registers replicas found alive by a restarted gateway. */
  adopt(replicas: Replica[]): void {
    for (const r of replicas) {
      r.onExit = (x) => this.onReplicaExit(x);
      this.replicas.push(r);
    }
    this.reindex();
    const a = this.record.autoscaling;
    if (a && this.record.state === 'running') {
      for (const set of this.revisions.values())
        set.desired = Math.min(a.maxReplicas, Math.max(a.minReplicas, set.members.length));
    }
  }

  /**
   * One autoscaling step (called by the gateway every tick): revisions' desired counts from their
   * autoscalers, and scale to zero after `scaleToZeroAfterMs` without a request.
   */
  tick(): void {
    if (this.destroyed || this.record.state !== 'running' || this.waking || this.hibernating) return;
    let changed = false;
    const now = performance.now();
    for (const set of this.revisions.values()) {
      if (!set.autoscaler) continue;
      const d = set.autoscaler.decide(now, set.readyCount(), set.desired);
      if (d.desired !== set.desired) {
        this.setDesired(set, d.desired, d.desired > set.desired ? d.reason : 'stable');
        changed = true;
      }
    }
    if (changed) this.scheduleReconcile(0);
    const idleAfter = this.record.scaleToZeroAfterMs;
    if (
      idleAfter !== null &&
      this.operations === 0 &&
      Date.now() - this.lastActivityMs >= idleAfter &&
      this.inFlight() === 0 &&
      this.heldRequests() === 0
    ) {
      this.hibernating = true;
      this.hibernate('idle')
        .catch((err: Error) => this.ctx.log(`deployment "${this.id}": scale to zero failed: ${err.message}`))
        .finally(() => (this.hibernating = false));
    }
  }

  inFlight(): number {
    let n = 0;
    for (const s of this.revisions.values()) n += s.inFlight;
    return n;
  }

  heldRequests(): number {
    let n = 0;
    for (const s of this.revisions.values()) n += s.held;
    return n;
  }

  private onReplicaExit(replica: Replica): void {
    // Planned stops are not crashes; a replica that dies before it is ready fails its own start.
    if (replica.stopping || !replica.ready || this.destroyed) return;
    this.ctx.log(`deployment "${this.id}": replica pid ${replica.pid} ${replica.exitReason}; restarting it`);
    this.record.restarts++;
    this.ctx.metrics.restarts.labels(this.id).inc();
    this.scheduleReconcile();
  }

  /**
   * Converges in the background: at once for scaling (delay 0), with backoff for crash restarts and
   * after failures. Calls made while one is pending collapse into it.
   */
  scheduleReconcile(delayMs = this.restartBackoffMs): void {
    if (this.destroyed) return;
    if (delayMs === 0 && !this.reconcileQueued) {
      this.reconcileQueued = true;
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      this.runReconcile();
      return;
    }
    if (this.restartTimer || this.reconcileQueued) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.reconcileQueued) return;
      this.reconcileQueued = true;
      this.runReconcile();
    }, delayMs);
    this.restartTimer.unref();
  }

  private runReconcile(): void {
    this.exclusive(async () => {
      this.reconcileQueued = false;
      return this.reconcile();
    }).then(
      (drain) => {
        this.restartBackoffMs = 0;
        void drain.done.then(() => this.ctx.persist().catch(() => undefined));
        return this.ctx.persist();
      },
      (err: Error) => {
        this.restartBackoffMs = Math.min(MAX_RESTART_BACKOFF_MS, Math.max(500, this.restartBackoffMs * 2));
        this.ctx.log(
          `deployment "${this.id}": reconcile failed (next try in ${this.restartBackoffMs} ms): ${err.message}`,
        );
        for (const s of this.revisions.values()) s.notifyReady();
        this.scheduleReconcile();
      },
    );
  }

  /**
   * Converges the processes to the record (call only inside `exclusive`): first starts what is
   * missing in every revision and waits until it is ready, then retires replicas of old plans, of
   * removed revisions and beyond the desired counts. Resolves to the drains of those retirements.
   */
  private async reconcile(): Promise<Drain> {
    this.replicas = this.replicas.filter((r) => !r.exited);
    this.reindex();
    if (this.record.state !== 'running' || this.destroyed) return this.retire(this.replicas);
    const sets = [...this.revisions.values()].sort((a, b) => b.held - a.held);
    for (const set of sets) {
      const current = set.members.filter((r) => r.record.planKey === set.spec.plan.key && !r.stopping);
      const missing = set.desired - current.length;
      if (missing > 0) await this.startReplicas(set, missing);
    }
    const retire = this.replicas.filter((r) => !this.revisions.has(r.revision));
    for (const set of this.revisions.values()) {
      const current = set.members.filter((r) => r.record.planKey === set.spec.plan.key);
      retire.push(...set.members.filter((r) => r.record.planKey !== set.spec.plan.key));
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

  private async startReplicas(set: RevisionSet, count: number): Promise<Replica[]> {
    const logDir = path.join(this.ctx.stateDir, 'gateway', 'logs', this.id);
    const started: Replica[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const replica = await spawnReplica(
          set.spec.plan,
          logDir,
          set.name,
          this.ctx.standby,
          path.join(this.ctx.stateDir, 'gateway', 'sockets'),
        );
        replica.onExit = (x) => this.onReplicaExit(x);
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
            if (this.revisions.get(set.name) === set) set.notifyReady();
          }),
        ),
      ]);
      this.ctx.log(
        `deployment "${this.id}" revision "${set.name}": started replica pid(s) ${started.map((r) => `${r.pid}:${r.port}${r.prestarted ? ' (pre-started)' : ''}`).join(', ')}`,
      );
      return started;
    } catch (err) {
      await this.retire(started).done;
      await this.ctx.persist();
      throw new Error(`deployment "${this.id}": ${(err as Error).message}`);
    }
  }

  /**
   * Takes replicas out of routing now; each is stopped (SIGTERM, then SIGKILL after the grace) once
   * its in-flight requests are done or the drain deadline passed. Resolves when all have exited.
   */
  private retire(list: Replica[]): Drain {
    if (list.length === 0) return { done: Promise.resolve() };
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

  // ---- reporting ----

  /** Changes whenever the spec does (also when a gateway restarts): what a conditional change must match. */
  get specVersion(): string {
    return `${this.ctx.epoch}.${this.generation}`;
  }

  /** The record as stored: with the pids of every replica process that may still be running. */
  snapshot(): DeploymentRecord {
    return {
      ...this.record,
      lastRequestAt: this.lastRequestMs === null ? null : new Date(this.lastRequestMs).toISOString(),
      live: [...this.replicas, ...this.retiring].filter((x) => !x.exited).map((x) => x.record),
    };
  }

  status(): DeploymentStatus {
    const r = this.record;
    const first = r.revisions[0];
    const hibernated = r.state === 'hibernated';
    const revisions: RevisionStatus[] = [...this.revisions.values()].map((set) => ({
      name: set.name,
      ...artifactOf(set.spec),
      percent: this.router.percentOf(set.name),
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
    const replicas: ReplicaStatus[] = this.replicas
      .filter((x) => !x.exited && !x.stopping)
      .map((x) => ({
        pid: x.pid,
        port: x.port,
        startedAt: x.record.startedAt,
        ready: x.ready,
        revision: x.revision,
        inFlight: x.inFlight,
      }));
    return {
      id: r.id,
      model: r.model,
      state: this.state,
      endpoint: `${this.ctx.gatewayUrl}/d/${encodeURIComponent(r.id)}`,
      desiredReplicas: [...this.revisions.values()].reduce(
        (n, s) => n + (hibernated ? this.initialReplicas(s.spec) : s.desired),
        0,
      ),
      replicas,
      ...artifactOf(first),
      createdAt: r.createdAt,
      runningSince: r.runningSince,
      lastRequestAt: this.lastRequestMs === null ? null : new Date(this.lastRequestMs).toISOString(),
      requestsServed: r.requestsServed,
      coldStarts: r.coldStarts,
      lastWakeMs: r.lastWakeMs,
      restarts: r.restarts,
      revisions,
      traffic: r.traffic,
      autoscaling: r.autoscaling,
      scaleToZeroAfterMs: r.scaleToZeroAfterMs,
      inFlight: this.inFlight(),
      heldRequests: this.heldRequests(),
      scaleEvents: [...this.scaleEvents],
      specVersion: this.specVersion,
      spec: specOf(r),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function artifactOf(spec: RevisionRecord): Pick<RevisionStatus, 'image' | 'modelDir'> {
  if (spec.image) return { image: { ...spec.image, ...(spec.plan.digest ? { digest: spec.plan.digest } : {}) } };
  return spec.modelDir ? { modelDir: spec.modelDir } : {};
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
  };
}
