/**
 * All deployments of the local target: create/update from a spec (pulling images), persistence,
 * adoption of replicas after a gateway restart, and the liveness tick that supervises replicas
 * the gateway did not start itself.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { loadConfig, type ReplicaRuntimeSetting } from '../config';
import { removeUnusedImageTrees } from '../oci/pull';
import type { DeploymentAccess, DeploymentStatus, ImageRef, ReplicaResources } from '../targets/deploymentTarget';
import { adoptContainerReplica, removeOrphanContainers } from './containerReplica';
import { ControlRequestError } from './controlErrors';
import {
  applyScalingChange,
  type ParsedRevision,
  type ParsedSpec,
  parseDeploymentSpec,
  sameImage,
} from './deploymentSpec';
import { DEFAULT_ACCESS, type DeploymentRecord, DeploymentStore, type RevisionRecord } from './deploymentStore';
import { GatewayMetrics, type GaugeSample } from './gatewayMetrics';
import {
  type LaunchPlan,
  launchPlanForImage,
  launchPlanForModelDir,
  type PulledImageForLaunch,
  replicaPlanKey,
  withResources,
} from './launchPlan';
import { type DeploymentSpecFields, LocalDeployment, type LocalDeploymentContext } from './localDeployment';
import { adoptReplica, probeReady, type Replica, readProcStartTicks, standbyBootEnv } from './replicaProcess';
import { ReplicaRuntimes } from './replicaRuntime';
import type { RevisionSet } from './revisionSet';
import { StandbyContainer } from './standbyContainer';
import { StandbyProcess } from './standbyProcess';
import { normalizeTrafficPolicy } from './trafficPolicy';

export type PullImageFn = (ref: ImageRef, destDir: string) => Promise<PulledImageForLaunch>;

/**
 * Decides, under the deployment's lock, the access a PUT gives it, or throws to refuse the PUT:
 * `current` is the existing deployment's (undefined for a new one), `asked` the spec's (undefined when
 * left out). The control API checks the caller's project and scopes here.
 */
export type AuthorizeApply = (
  current: DeploymentAccess | undefined,
  asked: DeploymentAccess | undefined,
) => DeploymentAccess;

const keepOrDefault: AuthorizeApply = (current, asked) => asked ?? current ?? DEFAULT_ACCESS;

export interface DeploymentManagerOptions {
  stateDir: string;
  gatewayUrl: string;
  pullImage: PullImageFn;
  readyTimeoutMs: number;
  stopGraceMs: number;
  drainTimeoutMs: number;
  /** How often autoscalers decide and idle deployments are scaled to zero. */
  autoscaleTickMs: number;
  /** Keep a pre-started node process for the next cold start. */
  standby: boolean;
  /** Registries images may come from (deploymentSpec.ts SpecRules); undefined: any. */
  registries?: readonly string[];
  /** What runs an image's replicas; default lib/config.ts `replicas.runtime` (FERRY_CONTAINER_RUNTIME). */
  replicaRuntime?: ReplicaRuntimeSetting;
  /** Limits of an image replica whose spec gives none; default lib/config.ts `replicas.defaultResources`. */
  defaultResources?: ReplicaResources;
  log(message: string): void;
}

const LIVENESS_TICK_MS = 1000;

export class DeploymentManager {
  private readonly deployments = new Map<string, LocalDeployment>();
  private readonly store: DeploymentStore;
  private readonly ctx: LocalDeploymentContext;
  /** apply/destroy of one id run one at a time (apply may pull an image before the deployment exists). */
  private readonly idLocks = new Map<string, Promise<unknown>>();
  private livenessTimer: NodeJS.Timeout | undefined;
  private autoscaleTimer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  readonly metrics = new GatewayMetrics();
  private readonly standby: StandbyProcess | undefined;
  private readonly standbyContainer: StandbyContainer | undefined;
  private readonly runtimes: ReplicaRuntimes;
  /** Image folders of applies in progress (their pulls, not yet any revision's): never collected. */
  private readonly imagesPulling = new Map<string, number>();
  private collecting: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DeploymentManagerOptions) {
    this.store = new DeploymentStore(opts.stateDir);
    this.standby = opts.standby
      ? new StandbyProcess(opts.stateDir, standbyBootEnv, readProcStartTicks, opts.log)
      : undefined;
    this.standbyContainer = opts.standby
      ? new StandbyContainer(opts.stateDir, opts.log, (key) => this.livePlanKeys().has(key))
      : undefined;
    const replicaSettings = opts.replicaRuntime && opts.defaultResources ? undefined : loadConfig().replicas;
    this.runtimes = new ReplicaRuntimes(
      opts.replicaRuntime ?? replicaSettings!.runtime,
      opts.defaultResources ?? replicaSettings!.defaultResources,
      opts.log,
    );
    this.ctx = {
      stateDir: opts.stateDir,
      gatewayUrl: opts.gatewayUrl,
      readyTimeoutMs: opts.readyTimeoutMs,
      stopGraceMs: opts.stopGraceMs,
      drainTimeoutMs: opts.drainTimeoutMs,
      metrics: this.metrics,
      standby: this.standby,
      standbyContainer: this.standbyContainer,
      runtimes: this.runtimes,
      persist: () => this.persist(),
      log: opts.log,
      epoch: randomBytes(4).toString('hex'),
    };
    this.registerGauges();
  }

  /** Gauges read from the live deployments at scrape time. */
  private registerGauges(): void {
    const perRevision = (value: (set: RevisionSet, d: LocalDeployment) => number | undefined) => (): GaugeSample[] => {
      const out: GaugeSample[] = [];
      for (const d of this.deployments.values()) {
        for (const set of d.revisions.values()) {
          const v = value(set, d);
          if (v !== undefined) out.push({ labels: { deployment: d.id, revision: set.name }, value: v });
        }
      }
      return out;
    };
    const m = this.metrics;
    m.gauge(
      'ferry_gateway_in_flight_requests',
      'Requests being forwarded to replicas now.',
      perRevision((s) => s.inFlight),
    );
    m.gauge(
      'ferry_gateway_held_requests',
      'Requests waiting for a ready replica now (during a wake or a scale-up).',
      perRevision((s) => s.held),
    );
    m.gauge(
      'ferry_gateway_desired_replicas',
      'Replicas the autoscaler (or the fixed count) wants; 0 while hibernated.',
      perRevision((s) => s.desired),
    );
    m.gauge(
      'ferry_gateway_ready_replicas',
      'Replicas ready and receiving requests.',
      perRevision((s) => s.readyCount()),
    );
    m.gauge(
      'ferry_gateway_starting_replicas',
      'Replicas started and not yet ready.',
      perRevision((s) => s.members.filter((r) => !r.ready && !r.exited && !r.stopping).length),
    );
    m.gauge(
      'ferry_gateway_draining_replicas',
      'Replicas taken out of routing, finishing their in-flight requests before they stop.',
      perRevision((s, d) => [...d.retiring].filter((r) => r.revision === s.name && !r.exited).length),
    );
    m.gauge(
      'ferry_gateway_traffic_percent',
      'Share of the traffic split per revision (header rules come first).',
      perRevision((s, d) => d.router.percentOf(s.name)),
    );
    m.gauge(
      'ferry_gateway_autoscaler_panic',
      "1 while the revision's autoscaler is in panic mode.",
      perRevision((s) => (s.autoscaler?.last ? Number(s.autoscaler.last.panic) : undefined)),
    );
    m.gauge(
      'ferry_gateway_autoscaler_observed_concurrency',
      "Average requests in flight or held over the autoscaler's stable and panic windows.",
      () => {
        const out: GaugeSample[] = [];
        for (const d of this.deployments.values()) {
          for (const set of d.revisions.values()) {
            const last = set.autoscaler?.last;
            if (!last) continue;
            out.push({
              labels: { deployment: d.id, revision: set.name, window: 'stable' },
              value: last.stableConcurrency,
            });
            out.push({
              labels: { deployment: d.id, revision: set.name, window: 'panic' },
              value: last.panicConcurrency,
            });
          }
        }
        return out;
      },
    );
    m.gauge('ferry_gateway_hibernated', '1 while the deployment is scaled to zero.', () =>
      [...this.deployments.values()].map((d) => ({
        labels: { deployment: d.id },
        value: d.record.state === 'hibernated' ? 1 : 0,
      })),
    );
  }

  get(id: string): LocalDeployment | undefined {
    return this.deployments.get(id);
  }

  list(): DeploymentStatus[] {
    return this.all().map((d) => d.status());
  }

  all(): LocalDeployment[] {
    return [...this.deployments.values()];
  }

  persist(): Promise<void> {
    return this.store.save(() => [...this.deployments.values()].map((d) => d.snapshot()));
  }

  /** For counters that change on every request: at most one write per second. */
  persistSoon(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      this.persist().catch((err: Error) => this.opts.log(`cannot save gateway state: ${err.message}`));
    }, 1000);
    this.persistTimer.unref();
  }

  /**
   * Restores routes from the state file. Replicas that are still the recorded process and answer
   * ready are adopted; recorded processes that are alive but not healthy are stopped; a deployment
   * that was running with no adoptable replica becomes hibernated (the next request wakes it).
   */
  async restore(): Promise<void> {
    for (const record of this.store.load()) {
      const deployment = new LocalDeployment({ ...record, live: [] }, this.ctx);
      const adopted: Replica[] = [];
      for (const replicaRecord of record.live) {
        const replica = replicaRecord.bundleDir
          ? await adoptContainerReplica(replicaRecord)
          : adoptReplica(replicaRecord);
        if (!replica) continue;
        if (record.state === 'running' && (await probeReady(replica, 2000))) {
          replica.ready = true;
          adopted.push(replica);
        } else {
          this.opts.log(`deployment "${record.id}": stopping recorded replica pid ${replica.pid} (not serving)`);
          await replica.stop(this.opts.stopGraceMs);
        }
      }
      if (record.state === 'running' && adopted.length === 0) {
        deployment.record.state = 'hibernated';
        deployment.record.runningSince = null;
        for (const set of deployment.revisions.values()) set.desired = 0;
      }
      deployment.adopt(adopted); // and, with any, converges in the background
      this.deployments.set(record.id, deployment);
      this.opts.log(
        `deployment "${record.id}": restored (${deployment.record.state}, adopted ${adopted.map((r) => r.pid).join(', ') || 'no replicas'})`,
      );
    }
    await this.persist();
    this.livenessTimer = setInterval(() => {
      for (const d of this.deployments.values()) d.checkReplicas();
    }, LIVENESS_TICK_MS);
    this.livenessTimer.unref();
    this.autoscaleTimer = setInterval(() => {
      for (const d of this.deployments.values()) d.tick();
    }, this.opts.autoscaleTickMs);
    this.autoscaleTimer.unref();
    this.standby?.fill();
    const live = [...this.deployments.values()].flatMap((d) => d.replicas.map((r) => r.record));
    for (const id of await removeOrphanContainers(this.opts.stateDir, live)) {
      this.opts.log(`removed container ${id}: no replica of this gateway's`);
    }
    await this.collectUnusedImages();
    await this.fillStandbyContainer();
  }

  /** A standby container for the first hibernated deployment's image, so its first cold start has one. */
  private async fillStandbyContainer(): Promise<void> {
    if (!this.standbyContainer) return;
    for (const d of this.deployments.values()) {
      if (d.record.state !== 'hibernated') continue;
      const plan = d.record.revisions[0]!.plan;
      if (!StandbyContainer.canRun(plan)) continue;
      const choice = await this.runtimes.choose(plan).catch(() => undefined);
      if (choice?.kind === 'container')
        this.standbyContainer.fillSoon(plan, choice.runtime, this.runtimes.limitsOf(plan), 0);
      return;
    }
  }

  /** The replica plan keys of every revision of every deployment. */
  private livePlanKeys(): Set<string> {
    return new Set(
      [...this.deployments.values()].flatMap((d) => d.record.revisions.map((r) => replicaPlanKey(r.plan))),
    );
  }

  private get imagesDir(): string {
    return path.join(this.opts.stateDir, 'images');
  }

  /**
   * What uses unpacked image trees now: every revision's image, every replica still running (a
   * revision's replicas drain after it is removed), and the pulls of applies in progress. Undefined
   * when a replica recorded by an older gateway runs an image without saying which tree.
   */
  private imageTreesInUse(): string[] | undefined {
    const inUse = [...this.imagesPulling.keys()];
    const standby = this.standbyContainer?.rootfs;
    if (standby) inUse.push(standby);
    for (const d of this.deployments.values()) {
      for (const r of d.record.revisions) if (r.image) inUse.push(r.plan.container?.rootfs ?? r.plan.cwd);
      for (const x of [...d.replicas, ...d.retiring]) {
        if (x.exited) continue;
        if (x.record.rootfs) inUse.push(x.record.rootfs);
        else if (x.record.planKey.startsWith('image:')) return undefined;
      }
    }
    return inUse;
  }

  /** Removes the unpacked image trees nothing uses any more (at start, and after each apply or delete). */
  collectUnusedImages(): Promise<void> {
    this.collecting = this.collecting
      .then(async () => {
        // A standby container for a plan no revision has any more would only hold its image.
        await this.standbyContainer?.retainOnly(this.livePlanKeys());
        const inUse = this.imageTreesInUse();
        if (!inUse) return;
        for (const dir of await removeUnusedImageTrees(this.imagesDir, inUse)) {
          this.opts.log(`removed the unpacked image ${path.basename(dir)}: no revision or replica uses it`);
        }
      })
      .catch((err: Error) => this.opts.log(`cannot remove unused images: ${err.message}`));
    return this.collecting;
  }

  private withIdLock<T>(id: string, op: () => Promise<T>): Promise<T> {
    const run = (this.idLocks.get(id) ?? Promise.resolve()).catch(() => undefined).then(op);
    const tail = run.catch(() => undefined);
    this.idLocks.set(id, tail);
    void tail.then(() => {
      if (this.idLocks.get(id) === tail) this.idLocks.delete(id);
    });
    return run;
  }

  /**
   * A conditional change (`If-Match: <specVersion>`) goes ahead only over the spec the client read:
   * 409 when it changed since (or the deployment was removed), so a read-modify-write (adding a canary
   * revision, promoting one) never undoes a concurrent change.
   */
  private checkIfMatch(id: string, ifMatch: string | undefined): void {
    if (ifMatch === undefined) return;
    const d = this.deployments.get(id);
    if (!d)
      throw new ControlRequestError(
        'spec_changed',
        `deployment "${id}" was removed since it was read (If-Match ${ifMatch})`,
      );
    if (d.specVersion !== ifMatch) {
      throw new ControlRequestError(
        'spec_changed',
        `deployment "${id}" changed since it was read (spec version ${ifMatch}, now ${d.specVersion}); read it again and retry`,
      );
    }
  }

  /**
   * PUT /_ferry/deployments/{id}: create, update or (same spec) leave as is; `ifMatch`: see checkIfMatch;
   * `authorize`: who may (AuthorizeApply).
   */
  apply(
    id: string,
    body: unknown,
    ifMatch?: string,
    authorize: AuthorizeApply = keepOrDefault,
  ): Promise<DeploymentStatus> {
    const spec = parseDeploymentSpec(id, body, { registries: this.opts.registries });
    // The folders its images unpack into are kept from the moment it is asked (it may wait for the
    // id's lock first) until it is over; a collection already under way finishes before it pulls.
    const reserved = spec.revisions.flatMap((r) => (r.image ? [path.join(this.imagesDir, imageDirName(r.image))] : []));
    for (const dir of reserved) this.imagesPulling.set(dir, (this.imagesPulling.get(dir) ?? 0) + 1);
    return this.withIdLock(id, async () => {
      await this.collecting;
      return this.applyParsed(id, spec, ifMatch, authorize);
    }).finally(() => {
      for (const dir of reserved) {
        const n = (this.imagesPulling.get(dir) ?? 1) - 1;
        if (n > 0) this.imagesPulling.set(dir, n);
        else this.imagesPulling.delete(dir);
      }
      void this.collectUnusedImages();
    });
  }

  private async applyParsed(
    id: string,
    spec: ParsedSpec,
    ifMatch: string | undefined,
    authorize: AuthorizeApply,
  ): Promise<DeploymentStatus> {
    const existing = this.deployments.get(id);
    const access = authorize(existing?.record.access, spec.access);
    this.checkIfMatch(id, ifMatch);
    const revisions: RevisionRecord[] = [];
    for (const r of spec.revisions) {
      const revision = await this.resolveRevision(r, existing);
      revisions.push({ ...revision, plan: withResources(revision.plan, spec.resources) });
    }
    const fields: DeploymentSpecFields = {
      model: spec.model,
      replicas: spec.replicas,
      revisions,
      traffic: spec.traffic,
      autoscaling: spec.autoscaling,
      scaleToZeroAfterMs: spec.scaleToZeroAfterMs,
      resources: spec.resources,
    };
    if (existing) {
      await existing.setAccess(access);
      if (!existing.isUnchanged(fields)) await existing.apply(fields);
      else existing.refreshPlans(revisions);
      return existing.status();
    }
    const record: DeploymentRecord = {
      id,
      ...fields,
      access,
      state: 'hibernated', // until apply has its replicas ready
      live: [],
      createdAt: new Date().toISOString(),
      runningSince: null,
      lastRequestAt: null,
      requestsServed: 0,
      coldStarts: 0,
      lastWakeMs: null,
      restarts: 0,
      events: [],
    };
    const deployment = new LocalDeployment(record, this.ctx);
    this.deployments.set(id, deployment);
    try {
      await deployment.apply(fields);
    } catch (err) {
      this.deployments.delete(id);
      this.metrics.forgetDeployment(id);
      await deployment.destroy();
      await this.persist();
      throw err;
    }
    return deployment.status();
  }

  /** PUT /_ferry/deployments/{id}/traffic: a new split and rules, from the next request on. */
  setTraffic(id: string, body: unknown, ifMatch?: string): Promise<DeploymentStatus> {
    return this.withIdLock(id, async () => {
      const d = this.require(id);
      this.checkIfMatch(id, ifMatch);
      const traffic = normalizeTrafficPolicy(
        body,
        d.record.revisions.map((r) => r.name),
      );
      await d.setTraffic(traffic);
      return d.status();
    });
  }

  /**
   * PUT /_ferry/deployments/{id}/scaling: replica counts, autoscaling and idle time only, read and
   * changed under the id's lock (so a concurrent apply or traffic change is never undone). Revisions
   * keep their replicas; a hibernated deployment stays hibernated.
   */
  setScaling(id: string, body: unknown): Promise<DeploymentStatus> {
    return this.withIdLock(id, async () => {
      const d = this.require(id);
      const current = d.specFields();
      const fields: DeploymentSpecFields = { ...current, ...applyScalingChange(current, body) };
      if (!d.isUnchanged(fields)) await d.apply(fields, { keepHibernated: true });
      return d.status();
    });
  }

  /** A revision with its launch plan; pulls only when no revision of the deployment runs that image already. */
  private async resolveRevision(r: ParsedRevision, existing: LocalDeployment | undefined): Promise<RevisionRecord> {
    const base = { name: r.name, ...(r.replicas !== undefined ? { replicas: r.replicas } : {}) };
    if (r.modelDir)
      return { ...base, modelDir: r.modelDir, plan: await launchPlanForModelDir(r.modelDir, this.opts.stateDir) };
    const ref = r.image!;
    const running = existing?.record.revisions.find((x) => sameImage(x.image, ref));
    if (running) return { ...base, image: ref, plan: running.plan };
    return { ...base, image: ref, plan: await this.pullPlan(ref) };
  }

  private async pullPlan(ref: ImageRef): Promise<LaunchPlan> {
    const destDir = path.join(this.imagesDir, imageDirName(ref));
    let pulled: PulledImageForLaunch;
    try {
      pulled = await this.opts.pullImage(ref, destDir);
    } catch (err) {
      throw new Error(`cannot pull ${ref.registry}/${ref.repository}:${ref.reference}: ${(err as Error).message}`);
    }
    try {
      return launchPlanForImage(pulled);
    } catch (err) {
      throw new ControlRequestError('bad_request', (err as Error).message); // the image cannot be run
    }
  }

  private require(id: string): LocalDeployment {
    const d = this.deployments.get(id);
    if (!d) throw new ControlRequestError('deployment_not_found', `no deployment "${id}"`);
    return d;
  }

  async hibernate(id: string): Promise<DeploymentStatus> {
    const d = this.require(id);
    await d.hibernate();
    return d.status();
  }

  /** PUT /_ferry/deployments/{id}/floor: a lower bound on replicas for `ttlMs` (0 clears it); wakes from zero. */
  async setFloor(id: string, floor: { replicas: number; ttlMs: number }): Promise<DeploymentStatus> {
    const d = this.require(id);
    d.setFloor(floor.replicas, floor.ttlMs);
    return d.status();
  }

  async wake(id: string): Promise<DeploymentStatus> {
    const d = this.require(id);
    await d.wakeAll();
    return d.status();
  }

  /** POST /_ferry/deployments/{id}/replicas/{pid}/drain: out of routing now, replaced, stopped when idle. */
  async drainReplica(id: string, pid: number, reason: string): Promise<DeploymentStatus> {
    const d = this.require(id);
    if ((await d.drainReplica(pid, reason)) === 'unknown')
      throw new ControlRequestError('bad_request', `deployment "${id}" has no replica with pid ${pid}`);
    return d.status();
  }

  /** Idempotent: true if a deployment was removed, false if there was none. */
  destroy(id: string): Promise<boolean> {
    return this.withIdLock(id, async () => {
      const d = this.deployments.get(id);
      if (!d) return false;
      this.deployments.delete(id);
      this.metrics.forgetDeployment(id);
      await d.destroy();
      await this.persist();
      void this.collectUnusedImages();
      return true;
    });
  }

  /**
   * Stops supervision and saves state. Replicas keep running (a restarted gateway adopts them)
   * unless `stopReplicas`, which stops them and records them as hibernated.
   */
  async close(stopReplicas: boolean): Promise<void> {
    clearInterval(this.livenessTimer);
    clearInterval(this.autoscaleTimer);
    clearTimeout(this.persistTimer);
    await this.standby?.close();
    await this.standbyContainer?.close();
    if (stopReplicas) {
      await Promise.all([...this.deployments.values()].map((d) => d.hibernate().catch(() => undefined)));
    }
    for (const d of this.deployments.values()) d.detach();
    await this.persist();
  }
}

/** A readable, path-safe directory name per image reference: `<repository>@<reference>`. */
function imageDirName(ref: ImageRef): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  const host = safe(ref.registry.replace(/^[a-z]+:\/\//, ''));
  return `${host}_${safe(ref.repository)}@${safe(ref.reference)}`;
}
