/**
 * All deployments of the local target: create/update from a spec (pulling images), persistence,
 * adoption of replicas after a gateway restart, and the liveness tick that supervises replicas
 * the gateway did not start itself.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { DeploymentStatus, ImageRef } from '../targets/deploymentTarget';
import { DeploymentStore, type DeploymentRecord } from './deploymentStore';
import { launchPlanForImage, launchPlanForModelDir, type LaunchPlan, type PulledImageForLaunch } from './launchPlan';
import { LocalDeployment, type DeploymentSpecFields, type LocalDeploymentContext } from './localDeployment';
import { adoptReplica, probeReady, type Replica } from './replicaProcess';

export type PullImageFn = (ref: ImageRef, destDir: string) => Promise<PulledImageForLaunch>;

/** A client mistake in a control request (HTTP 400/404) rather than a failure to run it. */
export class ControlRequestError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export interface DeploymentManagerOptions {
  stateDir: string;
  gatewayUrl: string;
  pullImage: PullImageFn;
  readyTimeoutMs: number;
  stopGraceMs: number;
  log(message: string): void;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MAX_REPLICAS = 64;
const LIVENESS_TICK_MS = 1000;

export class DeploymentManager {
  private readonly deployments = new Map<string, LocalDeployment>();
  private readonly store: DeploymentStore;
  private readonly ctx: LocalDeploymentContext;
  /** apply/destroy of one id run one at a time (apply may pull an image before the deployment exists). */
  private readonly idLocks = new Map<string, Promise<unknown>>();
  private livenessTimer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: DeploymentManagerOptions) {
    this.store = new DeploymentStore(opts.stateDir);
    this.ctx = {
      stateDir: opts.stateDir,
      gatewayUrl: opts.gatewayUrl,
      readyTimeoutMs: opts.readyTimeoutMs,
      stopGraceMs: opts.stopGraceMs,
      persist: () => this.persist(),
      log: opts.log,
    };
  }

  get(id: string): LocalDeployment | undefined {
    return this.deployments.get(id);
  }

  list(): DeploymentStatus[] {
    return [...this.deployments.values()].map((d) => d.status());
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
        const replica = adoptReplica(replicaRecord);
        if (!replica) continue;
        if (record.state === 'running' && (await probeReady(replica.port, 2000))) {
          replica.ready = true;
          adopted.push(replica);
        } else {
          this.opts.log(`deployment "${record.id}": stopping recorded replica pid ${replica.pid} (not serving)`);
          await replica.stop(this.opts.stopGraceMs);
        }
      }
      deployment.adopt(adopted);
      if (record.state === 'running' && adopted.length === 0) {
        deployment.record.state = 'hibernated';
        deployment.record.runningSince = null;
      }
      this.deployments.set(record.id, deployment);
      this.opts.log(`deployment "${record.id}": restored (${deployment.record.state}, adopted ${adopted.map((r) => r.pid).join(', ') || 'no replicas'})`);
      // Top up to the desired count, or stop replicas of an older spec, in the background.
      const converged = adopted.length === record.replicas && adopted.every((r) => r.record.planKey === record.plan.key);
      if (adopted.length > 0 && !converged) deployment.scheduleReconcile();
    }
    await this.persist();
    this.livenessTimer = setInterval(() => {
      for (const d of this.deployments.values()) d.checkReplicas();
    }, LIVENESS_TICK_MS);
    this.livenessTimer.unref();
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

  /** PUT /_ferry/deployments/{id}: create, update or (same spec) leave as is. */
  apply(id: string, body: unknown): Promise<DeploymentStatus> {
    const spec = parseSpec(id, body);
    return this.withIdLock(id, async () => {
      const existing = this.deployments.get(id);
      const plan = await this.resolvePlan(spec, existing);
      const fields: DeploymentSpecFields = { model: spec.model, replicas: spec.replicas, image: spec.image, modelDir: spec.modelDir, plan };
      if (existing) {
        if (!existing.isUnchanged(fields)) await existing.apply(fields);
        return existing.status();
      }
      const record: DeploymentRecord = {
        id,
        ...fields,
        state: 'hibernated', // until apply has its replicas ready
        live: [],
        createdAt: new Date().toISOString(),
        runningSince: null,
        lastRequestAt: null,
        requestsServed: 0,
        coldStarts: 0,
        lastWakeMs: null,
        restarts: 0,
      };
      const deployment = new LocalDeployment(record, this.ctx);
      this.deployments.set(id, deployment);
      try {
        await deployment.apply(fields);
      } catch (err) {
        this.deployments.delete(id);
        await deployment.destroy();
        await this.persist();
        throw err;
      }
      return deployment.status();
    });
  }

  /** The launch plan for a spec; pulls only when the image differs from what the deployment runs. */
  private async resolvePlan(spec: ParsedSpec, existing: LocalDeployment | undefined): Promise<LaunchPlan> {
    if (spec.modelDir) return launchPlanForModelDir(spec.modelDir);
    const ref = spec.image!;
    const old = existing?.record.image;
    if (old && old.registry === ref.registry && old.repository === ref.repository && old.reference === ref.reference) {
      return existing!.record.plan;
    }
    const destDir = path.join(this.opts.stateDir, 'images', imageDirName(ref));
    let pulled: PulledImageForLaunch;
    try {
      pulled = await this.opts.pullImage(ref, destDir);
    } catch (err) {
      throw new Error(`cannot pull ${ref.registry}/${ref.repository}:${ref.reference}: ${(err as Error).message}`);
    }
    try {
      return launchPlanForImage(pulled);
    } catch (err) {
      throw new ControlRequestError(400, (err as Error).message);
    }
  }

  private require(id: string): LocalDeployment {
    const d = this.deployments.get(id);
    if (!d) throw new ControlRequestError(404, `no deployment "${id}"`);
    return d;
  }

  async hibernate(id: string): Promise<DeploymentStatus> {
    const d = this.require(id);
    await d.hibernate();
    return d.status();
  }

  async wake(id: string): Promise<DeploymentStatus> {
    const d = this.require(id);
    await d.ensureServing(false);
    return d.status();
  }

  /** Idempotent: true if a deployment was removed, false if there was none. */
  destroy(id: string): Promise<boolean> {
    return this.withIdLock(id, async () => {
      const d = this.deployments.get(id);
      if (!d) return false;
      this.deployments.delete(id);
      await d.destroy();
      await this.persist();
      return true;
    });
  }

  /**
   * Stops supervision and saves state. Replicas keep running (a restarted gateway adopts them)
   * unless `stopReplicas`, which stops them and records them as hibernated.
   */
  async close(stopReplicas: boolean): Promise<void> {
    clearInterval(this.livenessTimer);
    clearTimeout(this.persistTimer);
    if (stopReplicas) {
      await Promise.all([...this.deployments.values()].map((d) => d.hibernate().catch(() => undefined)));
    }
    for (const d of this.deployments.values()) d.detach();
    await this.persist();
  }
}

interface ParsedSpec {
  model: string;
  replicas: number;
  image?: ImageRef;
  modelDir?: string;
}

function parseSpec(id: string, body: unknown): ParsedSpec {
  if (!ID_PATTERN.test(id)) {
    throw new ControlRequestError(400, `deployment id "${id}" must be 1-128 letters, digits, ".", "_" or "-" (not starting with "." "_" or "-")`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ControlRequestError(400, 'body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') throw new ControlRequestError(400, '"model" must be a non-empty string');
  if (!Number.isInteger(b.replicas) || (b.replicas as number) < 1 || (b.replicas as number) > MAX_REPLICAS) {
    throw new ControlRequestError(400, `"replicas" must be an integer from 1 to ${MAX_REPLICAS} (hibernate to scale to zero)`);
  }
  const spec: ParsedSpec = { model: b.model, replicas: b.replicas as number };
  if ((b.image === undefined) === (b.modelDir === undefined)) {
    throw new ControlRequestError(400, 'give exactly one of "image" ({registry, repository, reference}) or "modelDir"');
  }
  if (b.image !== undefined) {
    const img = b.image as Record<string, unknown>;
    for (const key of ['registry', 'repository', 'reference']) {
      if (typeof img?.[key] !== 'string' || img[key] === '') throw new ControlRequestError(400, `"image.${key}" must be a non-empty string`);
    }
    spec.image = { registry: img.registry as string, repository: img.repository as string, reference: img.reference as string };
  } else {
    if (typeof b.modelDir !== 'string' || !path.isAbsolute(b.modelDir)) throw new ControlRequestError(400, '"modelDir" must be an absolute path');
    if (!existsSync(path.join(b.modelDir, 'ferry-models.json'))) {
      throw new ControlRequestError(400, `"modelDir" ${b.modelDir} has no ferry-models.json`);
    }
    spec.modelDir = path.resolve(b.modelDir);
  }
  return spec;
}

/** A readable, path-safe directory name per image reference: `<repository>@<reference>`. */
function imageDirName(ref: ImageRef): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  const host = safe(ref.registry.replace(/^[a-z]+:\/\//, ''));
  return `${host}_${safe(ref.repository)}@${safe(ref.reference)}`;
}
