/**
 * A deployment whose replicas someone else runs (the kubernetes target's pods): the gateway routes to
 * their addresses, splits traffic between revisions and holds requests exactly as for its own
 * replicas, but starts and stops nothing itself. A revision's count is changed through `scaler` (the
 * kubernetes target: the scale subresource), and the endpoints come back from whoever watches them
 * (lib/targets/kubernetes/gatewayEndpoints.ts), which also reports each revision's desired count.
 */
import type * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { DeploymentAccess, DeploymentState, TrafficPolicy } from '../targets/deploymentTarget';
import type { Activatable } from './activator';
import type { AutoscalingSettings } from './autoscaler';
import { Replica } from './replicaProcess';
import { RevisionSet, withinAutoscalingBounds } from './revisionSet';
import { TrafficRouter } from './trafficPolicy';

export interface RemoteSpec {
  model: string;
  access: DeploymentAccess;
  replicas: number;
  revisions: Array<{ name: string; replicas?: number }>;
  traffic: Required<TrafficPolicy>;
  autoscaling: AutoscalingSettings | null;
  scaleToZeroAfterMs: number | null;
}

/** A ready endpoint of a revision. */
export interface RemoteEndpoint {
  name: string;
  host: string;
  port: number;
  startedAt: string;
}

/** Changes a revision's replica count where it runs. */
export type RemoteScaler = (revision: string, replicas: number) => Promise<void>;

/**
 * What the gateway saw of a deployment's requests. Only the gateway sees them, so it reports them to
 * where the deployment runs (the kubernetes target keeps them on the deployment's Service), and the
 * target's status, the monitor's idle time among them, reads them from there.
 */
export interface RemoteActivity {
  lastRequestAt: string | null;
  requestsServed: number;
  coldStarts: number;
  lastWakeMs: number | null;
}

/** Records a deployment's activity where it runs. */
export type ActivityReporter = (activity: RemoteActivity) => Promise<void>;

/** How often at most a busy deployment's activity is reported (one API write per deployment per period). */
export const ACTIVITY_REPORT_MS = 5_000;

type Set = RevisionSet<{ name: string }>;

export class RemoteDeployment implements Activatable {
  revisions = new Map<string, Set>();
  destroyed = false;
  readonly record: { access: DeploymentAccess; requestsServed: number; coldStarts: number };
  private router: TrafficRouter;
  private spec: RemoteSpec;
  private readonly members = new Map<string, Replica>();
  private scalingUp = new Map<string, Promise<void>>();
  private lastActivityMs = Date.now();
  private lastRequestAt: string | null = null;
  private lastWakeMs: number | null = null;
  /** Activity not reported yet, and when it last was. */
  private unreported = false;
  private lastReportMs = 0;

  constructor(
    readonly id: string,
    spec: RemoteSpec,
    private readonly scaler: RemoteScaler,
    private readonly log: (message: string) => void,
    private readonly reporter?: ActivityReporter,
  ) {
    this.spec = spec;
    this.record = { access: spec.access, requestsServed: 0, coldStarts: 0 };
    this.router = new TrafficRouter(
      spec.traffic,
      spec.revisions.map((r) => r.name),
    );
    this.update(spec);
  }

  /** The spec changed (revisions, traffic, scaling, access): from the next request on. */
  update(spec: RemoteSpec): void {
    this.spec = spec;
    this.record.access = spec.access;
    const next = new Map<string, Set>();
    for (const r of spec.revisions) {
      const set = this.revisions.get(r.name) ?? new RevisionSet<{ name: string }>({ name: r.name }, 0);
      set.spec = { name: r.name };
      set.useAutoscaling(spec.autoscaling);
      next.set(r.name, set);
    }
    for (const [name, dropped] of this.revisions) if (next.get(name) !== dropped) dropped.notifyReady();
    this.revisions = next;
    this.router = new TrafficRouter(
      spec.traffic,
      spec.revisions.map((r) => r.name),
    );
  }

  get state(): DeploymentState {
    const sets = [...this.revisions.values()];
    if (sets.some((s) => s.hasRoutable())) return 'running';
    return sets.every((s) => s.desired === 0) ? 'hibernated' : 'waking';
  }

  /** The count the revision runs where it is (its Deployment's replicas). */
  setDesired(revision: string, replicas: number): void {
    const set = this.revisions.get(revision);
    if (set) set.desired = replicas;
  }

  /** The revision's ready endpoints now: new ones become routable (held requests go to them), gone ones leave. */
  setEndpoints(revision: string, endpoints: RemoteEndpoint[]): void {
    const set = this.revisions.get(revision);
    if (!set) return;
    const wanted = new Map(endpoints.map((e) => [`${revision}/${e.name}/${e.host}`, e]));
    let added = false;
    for (const [key, e] of wanted) {
      if (this.members.has(key)) continue;
      const replica = new Replica({
        pid: 0,
        port: e.port,
        host: e.host,
        name: e.name,
        startedAt: e.startedAt,
        procStartTicks: null,
        logFile: '',
        planKey: '',
        revision,
        runtime: 'pod',
      });
      replica.ready = true;
      this.members.set(key, replica);
      set.members.push(replica);
      added = true;
    }
    for (const [key, replica] of this.members) {
      if (!key.startsWith(`${revision}/`) || wanted.has(key)) continue;
      // Out of routing at once; requests in flight finish (the pod drains them after SIGTERM).
      replica.stopping = true;
      this.members.delete(key);
      set.members = set.members.filter((m) => m !== replica);
    }
    if (added) set.notifyReady();
  }

  route(headers: http.IncomingHttpHeaders): Set {
    return this.revisions.get(this.router.choose(headers))!;
  }

  touch(): void {
    this.lastActivityMs = Date.now();
    this.lastRequestAt = new Date(this.lastActivityMs).toISOString();
    this.unreported = true;
  }

  get activity(): RemoteActivity {
    return {
      lastRequestAt: this.lastRequestAt,
      requestsServed: this.record.requestsServed,
      coldStarts: this.record.coldStarts,
      lastWakeMs: this.lastWakeMs,
    };
  }

  /** Sends the activity to the reporter: now, or (`whenDue`) once ACTIVITY_REPORT_MS passed since the last. */
  private reportActivity(whenDue: boolean): void {
    if (!this.reporter || !this.unreported) return;
    if (whenDue && Date.now() - this.lastReportMs < ACTIVITY_REPORT_MS) return;
    this.unreported = false;
    this.lastReportMs = Date.now();
    this.reporter(this.activity).catch((err: Error) => {
      this.unreported = true;
      this.log(`deployment "${this.id}": reporting its activity failed: ${err.message}`);
    });
  }

  liveSet(name: string): Set {
    return this.revisions.get(name) ?? this.revisions.get(this.spec.revisions[0].name)!;
  }

  /** No ready endpoint: a revision at zero is scaled to its starting count (once for all held requests). */
  ensureCapacity(set: Set, byRequest: boolean): Promise<void> {
    if (set.hasRoutable()) return Promise.resolve();
    if (this.destroyed) return Promise.reject(new Error(`deployment "${this.id}" was deleted`));
    if (set.desired > 0) return set.nextReady();
    let up = this.scalingUp.get(set.name);
    if (!up) {
      const r = this.spec.revisions.find((x) => x.name === set.name);
      const to = Math.max(1, withinAutoscalingBounds(r?.replicas ?? this.spec.replicas, this.spec.autoscaling));
      const started = performance.now();
      if (byRequest) {
        this.record.coldStarts++;
        // Reported before the pods are up: whoever reads the status then sees this request, not the idle time before it.
        this.touch();
        this.reportActivity(false);
      }
      set.desired = to;
      up = this.scaler(set.name, to)
        .then(() => this.log(`deployment "${this.id}" revision "${set.name}": 0 → ${to} (wake)`))
        .catch((err: Error) => {
          set.desired = 0;
          throw err;
        })
        .finally(() => this.scalingUp.delete(set.name));
      this.scalingUp.set(set.name, up);
      void up.then(
        () =>
          set.nextReady().then(() => {
            this.lastWakeMs = Math.round(performance.now() - started);
            this.unreported = true;
            this.log(`deployment "${this.id}" woke in ${this.lastWakeMs} ms`);
          }),
        () => set.notifyReady(),
      );
    }
    return up.then(() => set.nextReady());
  }

  /**
   * One autoscaling step: each autoscaled revision's count from its requests in flight and held, and
   * scale to zero after `scaleToZeroAfterMs` without a request.
   */
  tick(): void {
    if (this.destroyed) return;
    this.reportActivity(true);
    const now = performance.now();
    for (const set of this.revisions.values()) {
      if (!set.autoscaler || set.desired === 0 || this.scalingUp.has(set.name)) continue;
      const d = set.autoscaler.decide(now, set.readyCount(), set.desired);
      if (d.desired !== set.desired && d.desired > 0) this.scaleTo(set, d.desired, d.reason);
    }
    const idleAfter = this.spec.scaleToZeroAfterMs;
    if (idleAfter === null || Date.now() - this.lastActivityMs < idleAfter) return;
    for (const set of this.revisions.values()) {
      if (set.desired > 0 && set.inFlight === 0 && set.held === 0 && !this.scalingUp.has(set.name))
        this.scaleTo(set, 0, 'idle');
    }
  }

  private scaleTo(set: Set, to: number, reason: string): void {
    const from = set.desired;
    set.desired = to;
    this.log(`deployment "${this.id}" revision "${set.name}": ${from} → ${to} replicas (${reason})`);
    this.scaler(set.name, to).catch((err: Error) => {
      set.desired = from;
      this.log(`deployment "${this.id}" revision "${set.name}": scaling to ${to} failed: ${err.message}`);
    });
  }

  inFlight(): number {
    let n = 0;
    for (const s of this.revisions.values()) n += s.inFlight;
    return n;
  }
}
