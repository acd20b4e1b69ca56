/**
 * The gateway's own metrics in the Prometheus text exposition format (GET /metrics on the gateway):
 * routing, autoscaling and scale-to-zero decisions. Counters and histograms are updated on the request
 * path through cached label children (a map lookup per update); gauges are read from the live
 * deployments at scrape time, so they are never stale.
 */

const ESCAPES: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\n': '\\n' };
const escapeLabel = (v: string) => v.replace(/[\\"\n]/g, (c) => ESCAPES[c]);

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

abstract class Family<Child> {
  protected readonly children = new Map<string, { values: string[]; child: Child }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract create(): Child;
  abstract readonly type: string;
  protected abstract samples(values: string[], child: Child): string[];

  labels(...values: string[]): Child {
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) {
      entry = { values, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** Drops every series whose `label` is `value` (a deleted deployment). */
  forget(label: string, value: string): void {
    const i = this.labelNames.indexOf(label);
    if (i === -1) return;
    for (const [key, entry] of this.children) if (entry.values[i] === value) this.children.delete(key);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, child } of this.children.values()) lines.push(...this.samples(values, child));
    return `${lines.join('\n')}\n`;
  }
}

export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class Counter extends Family<CounterChild> {
  readonly type = 'counter';
  protected create(): CounterChild {
    return new CounterChild();
  }
  protected samples(values: string[], child: CounterChild): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(child.value)}`];
  }
}

export class HistogramChild {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length).fill(0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (v <= this.bounds[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

export class Histogram extends Family<HistogramChild> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.bounds);
  }
  protected samples(values: string[], child: HistogramChild): string[] {
    const out: string[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += child.counts[i];
      out.push(
        `${this.name}_bucket${labelText(this.labelNames, values, `le="${formatValue(this.bounds[i])}"`)} ${cumulative}`,
      );
    }
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${child.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(child.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${child.count}`);
    return out;
  }
}

/** A gauge whose samples are produced at scrape time. */
export interface GaugeSample {
  labels: Record<string, string>;
  value: number;
}

class CollectedGauge {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly collect: () => GaugeSample[],
  ) {}
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const s of this.collect()) {
      const names = Object.keys(s.labels);
      lines.push(
        `${this.name}${labelText(
          names,
          names.map((n) => s.labels[n]),
        )} ${formatValue(s.value)}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}

/** One route's request metrics: a counter child per status code, the duration histogram child. */
export class RouteMetrics {
  private readonly byStatus = new Map<number, CounterChild>();
  private readonly duration: HistogramChild;

  constructor(
    private readonly metrics: GatewayMetrics,
    readonly deployment: string,
    readonly revision: string,
    readonly generation: number,
  ) {
    this.duration = metrics.requestDuration.labels(deployment, revision);
  }

  /** A request answered with `status` after `seconds` (holding included). */
  record(status: number, seconds: number): void {
    let counter = this.byStatus.get(status);
    if (!counter) {
      counter = this.metrics.requests.labels(this.deployment, this.revision, String(status));
      this.byStatus.set(status, counter);
    }
    counter.inc();
    this.duration.observe(seconds);
  }
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const WAKE_BUCKETS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5, 10, 30, 60];

export class GatewayMetrics {
  readonly requests = new Counter(
    'ferry_gateway_requests_total',
    'Requests answered through the gateway, by deployment, revision and HTTP status (revision "" when none was chosen).',
    ['deployment', 'revision', 'code'],
  );
  readonly requestDuration = new Histogram(
    'ferry_gateway_request_duration_seconds',
    'Time from a request reaching the gateway until its response ended, holding included.',
    ['deployment', 'revision'],
    LATENCY_BUCKETS,
  );
  readonly unavailable = new Counter(
    'ferry_gateway_unavailable_total',
    'Requests answered 503 by the gateway, by reason (hold_timeout: not ready within the hold timeout; wake_failed: replicas could not start).',
    ['deployment', 'reason'],
  );
  readonly held = new Counter(
    'ferry_gateway_held_requests_total',
    'Requests held until a replica of their revision was ready.',
    ['deployment', 'revision'],
  );
  readonly holdDuration = new Histogram(
    'ferry_gateway_hold_duration_seconds',
    'How long requests were held waiting for a ready replica.',
    ['deployment'],
    WAKE_BUCKETS,
  );
  readonly wakeDuration = new Histogram(
    'ferry_gateway_wake_duration_seconds',
    'From the start of a wake from zero until the first replica was ready.',
    ['deployment'],
    WAKE_BUCKETS,
  );
  readonly coldStarts = new Counter('ferry_gateway_cold_starts_total', 'Wakes from zero started by a request.', [
    'deployment',
  ]);
  readonly scaleEvents = new Counter(
    'ferry_gateway_scale_events_total',
    "Changes of a revision's desired replica count, by direction and reason (stable, panic, idle, wake, hibernate, apply).",
    ['deployment', 'revision', 'direction', 'reason'],
  );
  readonly restarts = new Counter(
    'ferry_gateway_replica_restarts_total',
    'Replicas restarted after they died unexpectedly.',
    ['deployment'],
  );
  private readonly gauges: CollectedGauge[] = [];
  private readonly routes = new WeakMap<object, RouteMetrics>();
  /** Bumped when series are dropped, so cached RouteMetrics are rebuilt rather than feeding dropped children. */
  private generation = 0;

  /**
   * The request counters and duration histogram of one deployment's revision (`revision`: the object
   * that stands for it, e.g. its replica set), cached so that recording a request looks up no labels.
   */
  route(deployment: string, revision: { readonly name: string }): RouteMetrics {
    let r = this.routes.get(revision);
    if (!r || r.generation !== this.generation || r.deployment !== deployment || r.revision !== revision.name) {
      r = new RouteMetrics(this, deployment, revision.name, this.generation);
      this.routes.set(revision, r);
    }
    return r;
  }

  gauge(name: string, help: string, collect: () => GaugeSample[]): void {
    this.gauges.push(new CollectedGauge(name, help, collect));
  }

  forgetDeployment(id: string): void {
    this.generation++;
    for (const f of this.families()) f.forget('deployment', id);
  }

  private families(): Array<Counter | Histogram> {
    return [
      this.requests,
      this.requestDuration,
      this.unavailable,
      this.held,
      this.holdDuration,
      this.wakeDuration,
      this.coldStarts,
      this.scaleEvents,
      this.restarts,
    ];
  }

  render(): string {
    return [...this.gauges.map((g) => g.render()), ...this.families().map((f) => f.render())].join('');
  }
}
