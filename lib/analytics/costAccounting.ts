/**
 * Live cost accounting of a deployment, from what the monitor sees at each collection: which replicas
 * were running (with their start time and revision), how many requests were served and how long they
 * kept the replicas busy, and the cold starts.
 *
 * - Replica-seconds are the seconds each replica was actually held, split per revision.
 * - Each replica is priced at the resource it runs on (a catalog instance, or the local machine at its
 *   configured cost per hour), split into a price per vCPU-hour and per GiB-hour the way OpenCost does.
 * - Allocation follows OpenCost: max(request, usage) for each resource. CPU usage is estimated from the
 *   busy time (request durations summed over the interval: a request in flight keeps the replica's
 *   CPUs busy); memory is held by the loaded model, so its usage is the request. Idle cost is the part
 *   of the allocation that did no work (held CPU with no request in flight), shown apart.
 *
 * Pure: times are passed in (ms since the epoch), so every figure can be checked by hand.
 */

/** OpenCost's default relative prices of one vCPU-hour and one GiB-hour, used to split a unit's price. */
const OPENCOST_CPU_WEIGHT = 0.031611;
const OPENCOST_RAM_WEIGHT = 0.004237;

/** Hours in an average month (365.25 × 24 / 12), the figure cloud bills project with. */
export const HOURS_PER_MONTH = 730.5;

/** The machine (or instance) a replica runs on and what it costs. */
export interface ResourcePrice {
  usdPerHour: number;
  vcpus: number;
  memoryGiB: number;
  /** Where the price comes from, e.g. "catalog aws us-east-1 c7g.large" or "local FERRY_LOCAL_COST_PER_HOUR". */
  source: string;
}

export interface UnitPrices {
  usdPerVcpuHour: number;
  usdPerGiBHour: number;
}

/** A unit's hourly price split over its vCPUs and memory in OpenCost's default proportions. */
export function unitPrices(price: ResourcePrice): UnitPrices {
  const weight = price.vcpus * OPENCOST_CPU_WEIGHT + price.memoryGiB * OPENCOST_RAM_WEIGHT;
  if (!(weight > 0) || !(price.usdPerHour >= 0)) return { usdPerVcpuHour: 0, usdPerGiBHour: 0 };
  return {
    usdPerVcpuHour: (price.usdPerHour * OPENCOST_CPU_WEIGHT) / weight,
    usdPerGiBHour: (price.usdPerHour * OPENCOST_RAM_WEIGHT) / weight,
  };
}

/** A replica as one collection saw it. `key` identifies it across collections (pid, or pid:port). */
export interface ObservedReplica {
  key: string;
  revision: string;
  startedAt: number;
}

export interface ReplicaObservation {
  at: number;
  replicas: ObservedReplica[];
}

/**
 * Seconds each replica was held between two collections, per revision. A replica seen now counts from
 * its start (or the previous collection, whichever is later). One seen before and gone now stopped at
 * some point in between: at `stoppedAt` when the caller knows it (the monitor hibernated it), else the
 * midpoint, so the error is at most half an interval either way.
 */
export function heldSecondsBetween(
  previous: ReplicaObservation | undefined,
  current: ReplicaObservation,
  stoppedAt?: number,
): Map<string, number> {
  const held = new Map<string, number>();
  const add = (revision: string, ms: number) => {
    if (ms > 0) held.set(revision, (held.get(revision) ?? 0) + ms / 1000);
  };
  const from = previous?.at ?? -Infinity;
  const now = new Set<string>();
  for (const r of current.replicas) {
    now.add(r.key);
    add(r.revision, current.at - Math.max(from, Math.min(r.startedAt, current.at)));
  }
  if (previous) {
    const gone = stoppedAt ?? (previous.at + current.at) / 2;
    const end = Math.min(current.at, Math.max(previous.at, gone));
    for (const r of previous.replicas) if (!now.has(r.key)) add(r.revision, end - previous.at);
  }
  return held;
}

/** The resources one replica requests (its limits). */
export interface ReplicaRequest {
  cpus: number;
  memoryGiB: number;
}

export interface IntervalInput {
  from: number;
  to: number;
  heldSecondsByRevision: Map<string, number>;
  request: ReplicaRequest;
  price: ResourcePrice;
  requests: number;
  errors: number;
  /** Seconds requests spent in the replicas during the interval (the latency histogram's sum). */
  busySeconds: number;
  coldStarts: number;
  /** The cold starts' duration when known (the gateway reports the last wake's). */
  coldStartMs: number | null;
}

export interface IntervalCost {
  from: number;
  to: number;
  replicaSeconds: number;
  byRevision: Record<string, { replicaSeconds: number; allocatedUsd: number }>;
  /** max(request, usage) priced, over every replica-second held. */
  allocatedUsd: number;
  /** The allocation that did no work. */
  idleUsd: number;
  requests: number;
  errors: number;
  busySeconds: number;
  coldStarts: number;
  coldStartMs: number | null;
  /** Cost per 1,000 requests in this interval; null when none was served. */
  per1kUsd: number | null;
}

export function intervalCost(input: IntervalInput): IntervalCost {
  const prices = unitPrices(input.price);
  const replicaSeconds = sum([...input.heldSecondsByRevision.values()]);
  // Usage: a request in flight keeps a replica's CPUs busy; above the request only when the busy time
  // exceeds the time held (concurrent requests on a replica with more threads than its limit).
  const cpuSecondsUsed = input.busySeconds * input.request.cpus;
  const cpuSecondsRequested = replicaSeconds * input.request.cpus;
  const cpuSecondsAllocated = Math.max(cpuSecondsRequested, cpuSecondsUsed);
  const memGiBSeconds = replicaSeconds * input.request.memoryGiB;
  const allocatedUsd = (cpuSecondsAllocated * prices.usdPerVcpuHour + memGiBSeconds * prices.usdPerGiBHour) / 3600;
  const idleUsd = (Math.max(0, cpuSecondsAllocated - cpuSecondsUsed) * prices.usdPerVcpuHour) / 3600;
  const byRevision: IntervalCost['byRevision'] = {};
  for (const [revision, seconds] of input.heldSecondsByRevision) {
    byRevision[revision] = {
      replicaSeconds: seconds,
      allocatedUsd: replicaSeconds > 0 ? (allocatedUsd * seconds) / replicaSeconds : 0,
    };
  }
  return {
    from: input.from,
    to: input.to,
    replicaSeconds,
    byRevision,
    allocatedUsd,
    idleUsd,
    requests: input.requests,
    errors: input.errors,
    busySeconds: input.busySeconds,
    coldStarts: input.coldStarts,
    coldStartMs: input.coldStarts > 0 ? input.coldStartMs : null,
    per1kUsd: input.requests > 0 ? (allocatedUsd / input.requests) * 1000 : null,
  };
}

export interface CostSummary {
  from: number;
  to: number;
  replicaSeconds: number;
  requests: number;
  allocatedUsd: number;
  idleUsd: number;
  per1kUsd: number | null;
  /** The window's cost scaled to 24 hours. */
  perDayUsd: number;
  projectedMonthUsd: number;
  coldStarts: number;
  /** Mean and longest known cold-start duration. */
  coldStartMeanMs: number | null;
  coldStartMaxMs: number | null;
  byRevision: Record<string, { replicaSeconds: number; allocatedUsd: number }>;
}

/** Totals over stored intervals; per-day and per-month figures extrapolate the span they cover. */
export function summarizeCost(intervals: IntervalCost[]): CostSummary | null {
  if (intervals.length === 0) return null;
  const from = Math.min(...intervals.map((i) => i.from));
  const to = Math.max(...intervals.map((i) => i.to));
  const allocatedUsd = sum(intervals.map((i) => i.allocatedUsd));
  const requests = sum(intervals.map((i) => i.requests));
  const spanSeconds = sum(intervals.map((i) => Math.max(0, i.to - i.from))) / 1000;
  const perDayUsd = spanSeconds > 0 ? (allocatedUsd / spanSeconds) * 86_400 : 0;
  const durations = intervals.filter((i) => i.coldStarts > 0 && i.coldStartMs !== null);
  const byRevision: CostSummary['byRevision'] = {};
  for (const i of intervals) {
    for (const [rev, r] of Object.entries(i.byRevision)) {
      byRevision[rev] ??= { replicaSeconds: 0, allocatedUsd: 0 };
      const acc = byRevision[rev];
      acc.replicaSeconds += r.replicaSeconds;
      acc.allocatedUsd += r.allocatedUsd;
    }
  }
  const weightedColdMs = sum(durations.map((i) => (i.coldStartMs as number) * i.coldStarts));
  const coldCount = sum(durations.map((i) => i.coldStarts));
  return {
    from,
    to,
    replicaSeconds: sum(intervals.map((i) => i.replicaSeconds)),
    requests,
    allocatedUsd,
    idleUsd: sum(intervals.map((i) => i.idleUsd)),
    per1kUsd: requests > 0 ? (allocatedUsd / requests) * 1000 : null,
    perDayUsd,
    projectedMonthUsd: (perDayUsd / 24) * HOURS_PER_MONTH,
    coldStarts: sum(intervals.map((i) => i.coldStarts)),
    coldStartMeanMs: coldCount > 0 ? weightedColdMs / coldCount : null,
    coldStartMaxMs: durations.length ? Math.max(...durations.map((i) => i.coldStartMs as number)) : null,
    byRevision,
  };
}

function sum(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}
