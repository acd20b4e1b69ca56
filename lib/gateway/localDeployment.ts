/**
 * One deployment on the local target: its record, its revisions (each a replica set with its own
 * launch plan, desired count and optional autoscaler: revisionSet.ts), the traffic router between
 * them, and the operations that change its processes.
 *
 * Operations that start or stop processes run one at a time (operationQueue.ts), so an apply, a wake
 * started by traffic, an autoscaling step, a hibernate and a crash restart never interleave. Everything
 * converges through the reconciler (reconciler.ts): for each revision, `desired` ready replicas of its
 * current plan, replicas leaving by draining outside the queue, so a wake never waits behind a slow
 * request on a replica being retired. Requests that find no ready replica are held by the activator
 * (activator.ts), which wakes the deployment through `ensureCapacity`.
 */
import type * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { DeploymentState, DeploymentStatus, ReplicaResources, ScaleEvent } from '../targets/deploymentTarget';
import type { Activatable } from './activator';
import { deploymentStatus, type StatusSource } from './deploymentStatus';
import type { DeploymentRecord, RevisionRecord } from './deploymentStore';
import { replicaPlanKey } from './launchPlan';
import { OperationQueue } from './operationQueue';
import { type Drain, NOTHING_TO_DRAIN, type Reconciled, Reconciler, type ReconcilerContext } from './reconciler';
import type { Replica } from './replicaProcess';
import { initialReplicas, RevisionSet, withinAutoscalingBounds } from './revisionSet';
import { TrafficRouter } from './trafficPolicy';

export interface LocalDeploymentContext extends ReconcilerContext {
  gatewayUrl: string;
  /** Random per gateway process: the first part of every specVersion, so versions never repeat across restarts. */
  epoch: string;
}

/** What apply may change. */
export type DeploymentSpecFields = Pick<
  DeploymentRecord,
  'model' | 'replicas' | 'revisions' | 'traffic' | 'autoscaling' | 'scaleToZeroAfterMs' | 'resources'
>;

const SCALE_EVENTS_KEPT = 20;

export class LocalDeployment implements Activatable, Reconciled, StatusSource {
  revisions = new Map<string, RevisionSet>();
  router: TrafficRouter;
  destroyed = false;
  scaleEvents: ScaleEvent[] = [];
  /** Bumped by every change of the spec (apply, traffic): `specVersion` in the status, checked by If-Match. */
  private generation = 0;
  private readonly ops = new OperationQueue();
  private readonly reconciler: Reconciler;
  private waking: Promise<void> | undefined;
  private hibernating = false;
  /** Epoch ms of the last request start or end, or of the last wake: the idle clock. */
  private lastActivityMs: number;
  /** A lower bound set from outside (PUT /floor), held until `untilMs` (epoch ms) unless renewed. */
  private floor: { replicas: number; untilMs: number } | undefined;
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
    this.reconciler = new Reconciler(this, this.ops, ctx);
    this.syncRevisionSets(true);
    this.router = this.newRouter();
  }

  get id(): string {
    return this.record.id;
  }

  /** Replicas that belong to the deployment and are not retired. */
  get replicas(): readonly Replica[] {
    return this.reconciler.replicas;
  }

  /** Replicas being drained and stopped. */
  get retiring(): ReadonlySet<Replica> {
    return this.reconciler.retiring;
  }

  /** 'waking' until the wake's first replica is ready (the rest may still be starting). */
  get state(): DeploymentState {
    if (this.waking && ![...this.revisions.values()].some((s) => s.hasRoutable())) return 'waking';
    return this.record.state;
  }

  // ---- revisions and desired counts ----

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
      const initial = running ? initialReplicas(spec, this.record) : 0;
      if (!set) {
        set = new RevisionSet(spec, reason ? 0 : initial);
        if (reason) this.setDesired(set, initial, reason);
      } else {
        set.spec = spec;
        let desired = set.desired;
        if (resetDesired || !a) desired = initial;
        else if (running) desired = withinAutoscalingBounds(set.desired, a);
        if (reason) this.setDesired(set, desired, reason);
        else set.desired = desired;
      }
      set.useAutoscaling(a);
      next.set(spec.name, set);
    }
    for (const [name, dropped] of this.revisions) if (next.get(name) !== dropped) dropped.notifyReady(); // held requests move on
    this.revisions = next;
    this.reconciler.reindex();
  }

  private newRouter(): TrafficRouter {
    return new TrafficRouter(
      this.record.traffic,
      this.record.revisions.map((r) => r.name),
    );
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
    this.lastRequestMs = Date.now();
    this.lastActivityMs = this.lastRequestMs;
  }

  liveSet(name: string): RevisionSet {
    return this.revisions.get(name) ?? this.revisions.get(this.record.revisions[0].name)!;
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
    if (set.desired === 0) this.setDesired(set, initialReplicas(set.spec, this.record), 'wake');
    this.reconciler.schedule();
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
    const wake = this.ops
      .run(async () => {
        if (this.destroyed) throw new Error(`deployment "${this.id}" was deleted`);
        const wasHibernated = this.record.state === 'hibernated';
        if (!wasHibernated && set.hasRoutable()) return;
        this.record.state = 'running';
        for (const s of this.revisions.values()) {
          if (s.desired === 0) this.setDesired(s, initialReplicas(s.spec, this.record), 'wake');
          s.autoscaler?.reset();
        }
        this.reconciler.prune();
        try {
          if (!set.members.some((r) => !r.stopping && r.record.planKey === replicaPlanKey(set.spec.plan)))
            await this.reconciler.startReplicas(set, 1);
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
      })
      .finally(() => {
        this.waking = undefined;
      });
    this.waking = wake;
    wake.then(
      () => this.reconciler.schedule(0), // the rest of the replicas
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
    const drain = await this.ops.run(async (): Promise<Drain> => {
      if (opts.keepHibernated && this.record.state === 'hibernated') {
        Object.assign(this.record, fields);
        this.syncRevisionSets(false); // desired counts stay 0; the wake starts the new ones
        this.router = this.newRouter();
        await this.ctx.persist();
        return NOTHING_TO_DRAIN;
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
      this.router = this.newRouter();
      try {
        const drained = await this.reconciler.reconcile();
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
        this.reconciler.reindex();
        this.router = this.newRouter();
        const cleanup = await this.reconciler.reconcile().catch((): Drain => NOTHING_TO_DRAIN);
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
      resources: r.resources,
    };
  }

  /** True when applying `fields` would change nothing (the same launch plans, counts and policies). */
  isUnchanged(fields: DeploymentSpecFields): boolean {
    const canonical = (f: DeploymentSpecFields) =>
      JSON.stringify({
        ...f,
        revisions: f.revisions.map((r) => ({
          name: r.name,
          key: replicaPlanKey(r.plan),
          replicas: r.replicas ?? null,
        })),
      });
    return canonical(fields) === canonical(this.specFields());
  }

  /** Replaces the launch plans stored for unchanged revisions (e.g. a faster way to start the same thing). */
  refreshPlans(revisions: RevisionRecord[]): void {
    for (const r of revisions) {
      const mine = this.record.revisions.find((x) => x.name === r.name);
      if (mine && replicaPlanKey(mine.plan) === replicaPlanKey(r.plan)) mine.plan = r.plan;
    }
  }

  /** Changes who may reach the deployment (project, public): from the next request on, nothing restarts. */
  setAccess(access: DeploymentRecord['access']): Promise<void> {
    const current = this.record.access;
    if (current.project === access.project && current.public === access.public) return Promise.resolve();
    this.generation++;
    this.record.access = { project: access.project, public: access.public };
    return this.ctx.persist();
  }

  /** Changes only the traffic policy: effective from the next request, nothing restarts. */
  setTraffic(traffic: DeploymentRecord['traffic']): Promise<void> {
    this.generation++;
    this.record.traffic = traffic;
    this.router = this.newRouter();
    return this.ctx.persist();
  }

  /** Stops every replica (after draining); the next request wakes the deployment. */
  async hibernate(reason: 'hibernate' | 'idle' = 'hibernate'): Promise<void> {
    const drain = await this.ops.run(async () => {
      this.record.state = 'hibernated';
      this.record.runningSince = null;
      for (const set of this.revisions.values()) this.setDesired(set, 0, reason);
      if (reason === 'idle')
        this.ctx.log(`deployment "${this.id}": idle for ${this.record.scaleToZeroAfterMs} ms, scaling to zero`);
      const drained = await this.reconciler.reconcile();
      await this.ctx.persist();
      return drained;
    });
    await drain.done;
    await this.ctx.persist();
  }

  /**
   * At least `replicas` replicas of the revision with the most traffic for `ttlMs` (0 clears it): the
   * monitor's predictive floor, renewed at each collection, so a floor its setter stops renewing lapses
   * and reactive scaling is in charge again. Above 0 it wakes a hibernated deployment (without waiting
   * for it here) and holds off scale to zero; it never removes a replica.
   */
  setFloor(replicas: number, ttlMs: number): void {
    this.floor = replicas > 0 ? { replicas, untilMs: Date.now() + ttlMs } : undefined;
    if (replicas > 0 && !this.destroyed && (this.record.state === 'hibernated' || this.waking)) {
      this.ctx.log(`deployment "${this.id}": woken by its replica floor (${replicas})`);
      this.wakeAll().catch((err: Error) =>
        this.ctx.log(`deployment "${this.id}": wake for its floor failed: ${err.message}`),
      );
    }
  }

  /** The floor now (0 when none or lapsed), and the revision it holds up. */
  private floorNow(): { replicas: number; revision: string | undefined } {
    if (!this.floor || this.floor.untilMs <= Date.now()) return { replicas: 0, revision: undefined };
    const split = Object.entries(this.record.traffic.split).sort((a, b) => b[1] - a[1]);
    return { replicas: this.floor.replicas, revision: split[0]?.[0] ?? this.record.revisions[0].name };
  }

  /** POST /wake: wakes from zero and waits until every revision runs its desired replicas. */
  async wakeAll(): Promise<void> {
    const first = this.revisions.get(this.record.revisions[0].name)!;
    await this.ensureCapacity(first, false);
    const drain = await this.ops.run(() => this.reconciler.reconcile());
    void drain.done.then(() => this.ctx.persist());
    await this.ctx.persist();
  }

  /**
   * Takes one replica out of routing now and starts its replacement (the reconciler fills its revision
   * back to the desired count); the replica is stopped once its in-flight requests are done. For a replica
   * about to lose its machine: the replica agent asks on a spot interruption notice. 'draining' when it
   * was already leaving (an agent that asks again), 'unknown' when the deployment has no such replica.
   */
  async drainReplica(pid: number, reason: string): Promise<'draining' | 'unknown'> {
    if ([...this.reconciler.retiring].some((r) => r.pid === pid)) return 'draining';
    const drain = await this.ops.run(async (): Promise<Drain | undefined> => {
      const replica = this.reconciler.replicas.find((r) => r.pid === pid);
      if (!replica) return undefined;
      this.ctx.log(`deployment "${this.id}": draining replica pid ${pid} (${reason}); starting its replacement`);
      const drained = this.reconciler.retire([replica]);
      this.reconciler.schedule(0);
      return drained;
    });
    if (!drain) return [...this.reconciler.retiring].some((r) => r.pid === pid) ? 'draining' : 'unknown';
    void drain.done.then(() => this.ctx.persist());
    return 'draining';
  }

  /** Stops every replica (after draining) and supervision; resolves when they have exited. */
  async destroy(): Promise<void> {
    const drain = await this.ops.run(async (): Promise<Drain> => {
      this.destroyed = true;
      this.reconciler.cancelScheduled();
      for (const set of this.revisions.values()) set.notifyReady();
      return this.reconciler.retire(this.reconciler.replicas);
    });
    await drain.done;
  }

  /** Stops supervision without touching the processes (gateway shutdown: replicas keep serving). */
  detach(): void {
    this.reconciler.detach();
  }

  /** Liveness check for adopted replicas, which send no exit events. */
  checkReplicas(): void {
    this.reconciler.checkAlive();
  }

  /**
   * Registers replicas found alive by a restarted gateway; with any, converges in the background (tops
   * up to the desired counts, retires replicas of an older spec).
   */
  adopt(replicas: Replica[]): void {
    this.reconciler.adopt(replicas);
    const a = this.record.autoscaling;
    if (a && this.record.state === 'running') {
      for (const set of this.revisions.values()) set.desired = withinAutoscalingBounds(set.members.length, a);
    }
    if (replicas.length > 0) this.reconciler.schedule(0);
  }

  /**
   * One autoscaling step (called by the gateway every tick): revisions' desired counts from their
   * autoscalers, and scale to zero after `scaleToZeroAfterMs` without a request.
   */
  tick(): void {
    if (this.destroyed || this.record.state !== 'running' || this.waking || this.hibernating) return;
    let changed = false;
    const now = performance.now();
    const floor = this.floorNow();
    for (const set of this.revisions.values()) {
      if (!set.autoscaler) continue;
      const d = set.autoscaler.decide(
        now,
        set.readyCount(),
        set.desired,
        set.spec.name === floor.revision ? floor.replicas : 0,
      );
      if (d.desired !== set.desired) {
        this.setDesired(set, d.desired, d.desired > set.desired ? d.reason : 'stable');
        changed = true;
      }
    }
    if (changed) this.reconciler.schedule(0);
    const idleAfter = this.record.scaleToZeroAfterMs;
    if (
      idleAfter !== null &&
      floor.replicas === 0 &&
      this.ops.pending === 0 &&
      Date.now() - this.lastActivityMs >= idleAfter &&
      this.inFlight() === 0 &&
      this.heldRequests() === 0
    ) {
      this.hibernating = true;
      this.hibernate('idle')
        .catch((err: Error) => this.ctx.log(`deployment "${this.id}": scale to zero failed: ${err.message}`))
        .finally(() => {
          this.hibernating = false;
        });
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

  // ---- reporting ----

  /** Changes whenever the spec does (also when a gateway restarts): what a conditional change must match. */
  get specVersion(): string {
    return `${this.ctx.epoch}.${this.generation}`;
  }

  get defaultResources(): ReplicaResources {
    return this.ctx.runtimes.defaultResources;
  }

  get lastRequestAt(): string | null {
    return this.lastRequestMs === null ? null : new Date(this.lastRequestMs).toISOString();
  }

  /** The record as stored: with the pids of every replica process that may still be running. */
  snapshot(): DeploymentRecord {
    return {
      ...this.record,
      lastRequestAt: this.lastRequestAt,
      live: [...this.replicas, ...this.retiring].filter((x) => !x.exited).map((x) => x.record),
    };
  }

  status(): DeploymentStatus {
    return deploymentStatus(this, this.ctx.gatewayUrl);
  }
}
