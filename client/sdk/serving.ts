/**
 * Serving controls of a deployment where it runs: through the gateway's control API (the `local`
 * target), or on its Kubernetes namespace (the kubernetes target, as its PostgreSQL row records it).
 * A served deployment's status, traffic split and rules, scaling, canary promote and rollback
 * (recorded in PostgreSQL), the canary checks a deploy makes before it uploads, and inference through
 * the deployment's endpoint (always the gateway's).
 */
import { Pool } from 'pg';
import { FerryRepository } from '../../lib/db/repository';
import { applyScalingChange, MAX_REVISIONS } from '../../lib/gateway/deploymentSpec';
import { normalizeTrafficPolicy } from '../../lib/gateway/trafficPolicy';
import {
  DeploymentNotFoundError,
  type DeploymentTarget,
  type DeploymentStatus as GatewayDeploymentStatus,
  type ScalingChange,
  type TrafficPolicy,
} from '../../lib/targets/deploymentTarget';
import { type GatewayKey, GatewayRequestError, LocalTarget } from '../../lib/targets/local';
import { RevisionConflictError, rulesTo, specKeepingOnly } from '../../lib/targets/revisions';
import { targetPlace } from '../../lib/targets/targetRecord';
import { type CanaryRequest, canaryRevisionName, type DeploymentTargetChoice } from '../../workflows/types';
import { FerryError, UnknownDeploymentError } from './errors';
import type { DeploymentRuns } from './runs';
import type { DeploymentListEntry, InferRequest, InferResponse, ResolvedDeployment, RevisionChange } from './types';

/** Read-modify-write rounds of a promote or rollback lost to concurrent changes before it gives up. */
const MAX_CONFLICTS = 4;

/** The kubernetes target on a namespace (the configured one when absent). */
export type ClusterTargets = (namespace: string | undefined) => Promise<DeploymentTarget>;

/** A deployment as served, and the target that serves it. */
interface Served {
  status: GatewayDeploymentStatus;
  target: DeploymentTarget;
}

export class ServingControls {
  private readonly gateway: LocalTarget;
  /** PostgreSQL, opened on first use (promote and rollback record what they did). */
  private db: { pool: Pool; repo: FerryRepository } | undefined;

  constructor(
    private readonly gatewayUrl: string,
    private readonly postgresUrl: string,
    /** Deployment references resolve through their pipeline runs. */
    private readonly runs: DeploymentRuns,
    /** The key sent to the gateway (its control API and inference), when it checks keys. */
    private readonly key?: GatewayKey,
    /** Deployments on the kubernetes target; without it only the gateway's are reached. */
    private readonly cluster?: ClusterTargets,
  ) {
    this.gateway = new LocalTarget(gatewayUrl, key);
  }

  async close(): Promise<void> {
    await this.db?.pool.end();
    this.db = undefined;
  }

  /** Every deployment the gateway serves; undefined when it does not answer. */
  async served(): Promise<GatewayDeploymentStatus[] | undefined> {
    return this.gateway.list().catch(() => undefined);
  }

  /** The gateway's view of a served deployment: revisions, traffic split and rules, replicas, autoscaling. */
  async status(ref: string): Promise<GatewayDeploymentStatus> {
    return (await this.servedStatus(ref)).status;
  }

  /**
   * Changes how requests are shared between the deployment's revisions, from the next request on; no
   * replica restarts. Given fields replace the current ones and left-out ones stay: `{split}` keeps the
   * header rules, `{rules}` keeps the split. Checked here first (percentages add up to 100, every named
   * revision exists), so a bad change is refused without sending anything.
   */
  async setTraffic(ref: string, change: TrafficPolicy): Promise<GatewayDeploymentStatus> {
    const { status: current, target } = await this.servedStatus(ref);
    const traffic = { split: change.split ?? current.traffic.split, rules: change.rules ?? current.traffic.rules };
    try {
      normalizeTrafficPolicy(
        traffic,
        current.revisions.map((r) => r.name),
      );
    } catch (err) {
      throw new FerryError(`traffic of ${current.id} not changed: ${(err as Error).message}`);
    }
    return this.gatewayCall(current.id, 'traffic', () => target.setTraffic(current.id, traffic));
  }

  /**
   * Changes replica counts, autoscaling and scale to zero; nothing else (revisions, images, traffic) and
   * no running replica is restarted. `{replicas: N}` alone: a fixed N per revision (autoscaling off);
   * `{autoscaling: {...}}`: merged over the current settings (or the defaults when it was off), with
   * `replicas` then the count to start from; `{scaleToZeroAfterMs: null}`: no scale to zero on idle.
   * A lower count drains the extra replicas (an autoscaler only after its scale-down delay); a
   * hibernated deployment stays hibernated and wakes with the new counts. Checked here first.
   */
  async setScaling(ref: string, change: ScalingChange): Promise<GatewayDeploymentStatus> {
    const { status: current, target } = await this.servedStatus(ref);
    const body: ScalingChange =
      change.replicas !== undefined && change.autoscaling === undefined ? { ...change, autoscaling: null } : change;
    try {
      applyScalingChange(
        {
          replicas: current.spec.replicas ?? 1,
          autoscaling: current.autoscaling,
          scaleToZeroAfterMs: current.scaleToZeroAfterMs,
        },
        body,
      );
    } catch (err) {
      throw new FerryError(`scaling of ${current.id} not changed: ${(err as Error).message}`);
    }
    return this.gatewayCall(current.id, 'scaling', () => target.setScaling(current.id, body));
  }

  /**
   * Gives revision `revision` all of the traffic (header rules naming other revisions are dropped),
   * then removes the other revisions: their replicas finish the requests they hold and stop; no
   * request fails and the kept revision's replicas are not restarted. Resolves once they have stopped.
   * Recorded in PostgreSQL (a `promoted` event on the deployment; canary versions' rows become
   * `promoted` or `removed`). An unknown revision is refused and nothing changes. Promoting the only
   * revision changes nothing. A hibernated deployment is woken (the removal is a whole-spec change).
   */
  async promote(ref: string, revision: string): Promise<RevisionChange> {
    return this.keepOnly(ref, 'promoted', (current) => {
      const names = current.revisions.map((r) => r.name);
      if (!names.includes(revision)) {
        throw new FerryError(
          `promote refused: deployment ${current.id} has no revision "${revision}" (it has: ${names.join(', ')}); nothing changed`,
        );
      }
      return revision;
    });
  }

  /**
   * Rolls a canary back: the deployment's first revision — the one it served before canaries were added
   * (they are appended) — gets all of the traffic and every other revision is removed, as by
   * `promote(ref, <first revision>)`. Refused when the deployment has one revision only (a promoted
   * canary replaced the revision before it: deploy that version again with a canary and promote it).
   */
  async rollback(ref: string): Promise<RevisionChange> {
    return this.keepOnly(ref, 'rolled-back', (current) => {
      if (current.revisions.length < 2) {
        throw new FerryError(
          `rollback refused: deployment ${current.id} serves one revision ("${current.revisions[0]?.name}") and has no canary to remove; ` +
            'a promoted revision cannot be rolled back (deploy the previous version with --canary and promote it)',
        );
      }
      return current.revisions[0].name;
    });
  }

  /**
   * The live deployment a canary version of `model` joins: `canary.of`, or the model's newest deployment
   * on the gateway. Refuses (FerryError) a bad percent, replicas given, a model with no live deployment,
   * another model's deployment, a taken revision name and a deployment with no room for another revision.
   */
  async canaryTarget(
    model: string,
    version: string,
    canary: { percent: number; of?: string },
    replicas: number | undefined,
    /** Where the deploy runs: a canary without `of` joins the model's newest deployment there. */
    where?: DeploymentTargetChoice,
  ): Promise<CanaryRequest> {
    const { percent, of } = canary;
    if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) {
      throw new FerryError(`canary refused: the percent must be a number from 0 to 100, got ${String(percent)}`);
    }
    if (replicas !== undefined) {
      throw new FerryError(
        "canary refused: a canary revision follows its deployment's scaling; leave out replicas and change them with `ferry scale`",
      );
    }
    let base: GatewayDeploymentStatus;
    if (of !== undefined) {
      try {
        base = (await this.servedStatus(of)).status;
      } catch (err) {
        if (err instanceof UnknownDeploymentError) throw new FerryError(`canary refused: ${err.message}`);
        throw err;
      }
    } else {
      const target = where?.kind === 'kubernetes' && this.cluster ? await this.cluster(where.namespace) : this.gateway;
      const live = (await target.list())
        .filter((d) => d.model === model)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      if (!live.length) {
        throw new FerryError(
          `canary refused: model "${model}" has no live deployment to add it to (the gateway at ${this.gatewayUrl} serves none of it); ` +
            `deploy it first without --canary, or name a deployment with --canary-of`,
        );
      }
      base = live[0];
    }
    if (base.model !== model) {
      throw new FerryError(
        `canary refused: deployment ${base.id} serves model "${base.model}", not "${model}" (a canary is another version of the same model)`,
      );
    }
    const revision = canaryRevisionName(version);
    if (base.revisions.some((r) => r.name === revision)) {
      throw new FerryError(`canary refused: deployment ${base.id} already has a revision "${revision}"`);
    }
    if (base.revisions.length >= MAX_REVISIONS) {
      throw new FerryError(
        `canary refused: deployment ${base.id} already has ${base.revisions.length} revisions (at most ${MAX_REVISIONS}); promote one or roll back first`,
      );
    }
    return { of: base.id, percent };
  }

  /** One inference through the deployment's endpoint (a canary version's request asks for its revision). */
  async infer(ref: string, request: InferRequest): Promise<InferResponse> {
    const status = await this.runs.status(ref);
    if (!status.inferUrl)
      throw new FerryError(`deployment ${status.deploymentId} has no endpoint yet (it is at: ${status.phase})`);
    const key = await this.key?.();
    const res = await fetch(status.inferUrl, {
      method: 'POST',
      // A canary version shares its base deployment's endpoint: ask for its revision by name.
      headers: {
        'content-type': 'application/json',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(status.canary ? { 'x-ferry-variant': status.canary.revision } : {}),
      },
      body: JSON.stringify(request),
    }).catch((err: Error) => {
      throw new FerryError(`endpoint ${status.inferUrl} is not reachable: ${err.message}`);
    });
    const body = (await res.json().catch(() => ({}))) as InferResponse & { error?: string };
    if (!res.ok) throw new FerryError(`inference failed (${res.status}): ${body.error ?? res.statusText}`);
    return body;
  }

  private repository(): FerryRepository {
    if (!this.db) {
      const pool = new Pool({ connectionString: this.postgresUrl, max: 2, connectionTimeoutMillis: 5000 });
      pool.on('error', () => {
        /* an idle client lost: the pool replaces it on next use */
      });
      this.db = { pool, repo: new FerryRepository(pool) };
    }
    return this.db.repo;
  }

  /**
   * Reads the deployment, lets `choose` pick the revision to keep, and changes it only over what it
   * read (If-Match): after a concurrent change it reads again (a few times), never undoing that change blindly.
   */
  private async keepOnly(
    ref: string,
    kind: 'promoted' | 'rolled-back',
    choose: (current: GatewayDeploymentStatus) => string,
  ): Promise<RevisionChange> {
    for (let attempt = 1; ; attempt++) {
      const { status: current, target } = await this.servedStatus(ref);
      const keep = choose(current);
      const removed = current.revisions.map((r) => r.name).filter((n) => n !== keep);
      let status: GatewayDeploymentStatus | undefined = current;
      if (removed.length) {
        status = await this.gatewayCall(current.id, 'revisions', async () => {
          try {
            // 1. Every new request to `keep`, from the next request on.
            const traffic = { split: { [keep]: 100 }, rules: rulesTo(current.traffic.rules, keep) };
            const routed = await target.setTraffic(current.id, traffic, { ifMatch: current.specVersion });
            // 2. The others removed: out of routing, drained, stopped; `keep` is applied unchanged (no restart).
            const spec = specKeepingOnly(routed, keep);
            return spec ? await target.apply(spec, { ifMatch: routed.specVersion }) : routed;
          } catch (err) {
            if (err instanceof GatewayRequestError && err.status === 409 && attempt < MAX_CONFLICTS) return undefined; // changed meanwhile: read again
            if (err instanceof RevisionConflictError)
              throw new FerryError(
                `${kind === 'promoted' ? 'promote' : 'rollback'} of ${current.id} stopped: ${err.message}`,
              );
            throw err;
          }
        });
        if (!status) continue;
      }
      try {
        const repo = this.repository();
        if (removed.length && (await repo.getDeployment(current.id)))
          await repo.recordEvent(current.id, kind, { revision: keep, removed });
        await repo.settleCanaries(current.id, keep, removed);
      } catch (err) {
        throw new FerryError(
          `${current.id}: revision "${keep}" serves all of the traffic now, but recording it in PostgreSQL failed (${(err as Error).message}); run the command again to record it`,
        );
      }
      return { deploymentId: current.id, kept: keep, removed, status };
    }
  }

  /**
   * Finds `ref` on the gateway: as a gateway deployment id first (deployments applied without the
   * pipeline have no workflow), else resolved like every other command (model:version, model name);
   * a canary version resolves to the deployment it is a revision of.
   */
  private async servedStatus(ref: string): Promise<Served> {
    if (!ref.includes(':')) {
      try {
        return { status: await this.gateway.status(ref), target: this.gateway };
      } catch (err) {
        if (!(err instanceof DeploymentNotFoundError)) throw err; // e.g. the gateway is down: say so
      }
    }
    let resolved: ResolvedDeployment;
    try {
      resolved = await this.runs.resolve(ref);
    } catch (err) {
      if (!(err instanceof UnknownDeploymentError)) throw err;
      throw new UnknownDeploymentError(
        `no deployment "${ref}": the gateway at ${this.gatewayUrl} serves none by that id, and no model or deployment has that name (try \`ferry list\`)`,
      );
    }
    try {
      const target = await this.targetOf(resolved.deploymentId);
      return { status: await target.status(resolved.deploymentId), target };
    } catch (err) {
      if (!(err instanceof DeploymentNotFoundError)) throw err;
      const canary = (await this.runs.statusOfRun(resolved.workflowId).catch(() => undefined))?.canary;
      if (canary) {
        const target = await this.targetOf(canary.baseDeploymentId);
        const base = await target.status(canary.baseDeploymentId).catch(() => undefined);
        if (base) return { status: base, target };
      }
      throw new UnknownDeploymentError(
        `deployment ${resolved.deploymentId} is not served by the gateway at ${this.gatewayUrl} (not deployed yet, or undeployed; see \`ferry status ${ref}\`)`,
      );
    }
  }

  /** Where a deployment runs, as its row records it: its Kubernetes namespace, else the gateway. */
  private async targetOf(deploymentId: string): Promise<DeploymentTarget> {
    if (!this.cluster) return this.gateway;
    const row = await this.repository()
      .getDeployment(deploymentId)
      .catch(() => undefined);
    const place = targetPlace(row?.target);
    return place.kind === 'kubernetes' ? this.cluster(place.namespace) : this.gateway;
  }

  /** A control call whose refusal reads as what was not changed and why. */
  private async gatewayCall<T>(id: string, what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof DeploymentNotFoundError)
        throw new UnknownDeploymentError(`deployment ${id} was removed from the gateway meanwhile`);
      if (err instanceof GatewayRequestError && err.status < 500)
        throw new FerryError(`${what} of ${id} not changed: ${err.gatewayMessage}`);
      throw err;
    }
  }
}

/** A list entry's serving state from the gateway's deployments (undefined: the gateway did not answer). */
export function servingOf(entry: DeploymentListEntry, served: GatewayDeploymentStatus[] | undefined): string {
  if (!served) return 'unknown (gateway not reachable)';
  const own = served.find((d) => d.id === entry.deploymentId);
  if (own) {
    const revisions =
      own.revisions.length === 1 && own.revisions[0].name === 'default'
        ? ''
        : ` (${own.revisions.map((r) => `${r.name} ${r.percent}%`).join(', ')})`;
    return `${own.state}${revisions}`;
  }
  const revision = canaryRevisionName(entry.version);
  for (const d of served) {
    const r = d.model === entry.model ? d.revisions.find((x) => x.name === revision) : undefined;
    if (r) return `revision ${revision} of ${d.id}, ${r.percent}%`;
  }
  return 'not served';
}
