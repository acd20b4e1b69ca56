/**
 * The capacity model: how many servers (one inference at a time each) a strategy needs in each minute of
 * the profile to keep the p95 within the goal, how many instances that is per hour, and the p95 and the
 * share within the SLO that a fleet schedule then gives. Queueing: lib/cost/engine/queueing.ts.
 */
import type { Accelerator } from '../catalog/types';
import { type Calibration, cpuSpeed, gpuSpeedup, measuringMachineFactor, type SpeedFactor } from './cpuSpeed';
import {
  mixtureQuantile,
  type ResponseComponent,
  responseComponent,
  type ServiceTime,
  serversForP95,
  shareWithin,
} from './queueing';
import type { InfeasibleKind, ModelMeasurements } from './types';

/** Memory an instance keeps for its OS and agents (a Kubernetes node keeps more: strategies/kubernetes.ts). */
export const OS_RESERVE_GIB = 0.5;

export interface Hardware {
  vcpus: number;
  memoryGiB: number;
  speed: SpeedFactor;
  /** With an accelerator (used only when the plan asks for a GPU). */
  gpu?: SpeedFactor;
  reserveGiB?: number;
}

export interface PoolShape {
  /** One server's service time on this hardware. */
  service: ServiceTime;
  serversPerInstance: number;
  threadsPerServer: number;
}

export interface ShapeProblem {
  kind: InfeasibleKind;
  reason: string;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * Servers per instance and their service time. Each server is a replica process with the measured peak RSS
 * and min(measured threads, vCPUs) intra-op threads; fewer threads than measured slow it down in proportion
 * (conservative: onnxruntime gains less than linearly from threads), and a faster family speeds it up.
 */
export function shapeOn(
  model: ModelMeasurements,
  hw: Hardware,
  calibration: Calibration = {},
): PoolShape | ShapeProblem {
  const threadsPerServer = Math.max(1, Math.min(model.threads, Math.floor(hw.vcpus)));
  const byCpu = Math.max(hw.vcpus >= 1 ? 1 : 0, Math.floor(hw.vcpus / threadsPerServer));
  const usable = (hw.memoryGiB - (hw.reserveGiB ?? OS_RESERVE_GIB)) * GiB;
  const byMemory = Math.floor(usable / model.peakRssBytes);
  if (byMemory < 1) {
    return {
      kind: 'no-memory',
      reason: `does not fit in memory: a replica needs ${Math.ceil(model.peakRssBytes / MiB)} MiB, ${hw.memoryGiB} GiB less ${hw.reserveGiB ?? OS_RESERVE_GIB} GiB reserved leaves ${Math.max(0, Math.floor(usable / MiB))} MiB`,
    };
  }
  const scale =
    ((model.threads / threadsPerServer) * (measuringMachineFactor(calibration) / hw.speed.factor)) /
    (hw.gpu?.factor ?? 1);
  const s = model.batch1;
  return {
    service: { meanMs: s.meanMs * scale, p50Ms: s.p50Ms * scale, p95Ms: s.p95Ms * scale },
    serversPerInstance: Math.min(byCpu, byMemory),
    threadsPerServer,
  };
}

export function isProblem(x: PoolShape | ShapeProblem): x is ShapeProblem {
  return 'kind' in x;
}

export function hardwareOf(
  inst: {
    provider: 'aws' | 'gcp' | 'azure';
    instanceType: string;
    arch: 'x86_64' | 'arm64';
    vcpus: number;
    memoryGiB: number;
    accelerator?: Accelerator;
  },
  calibration: Calibration,
  useGpu: boolean,
): Hardware {
  const gpu = useGpu && inst.accelerator ? gpuSpeedup(inst.accelerator, calibration) : undefined;
  return { vcpus: inst.vcpus, memoryGiB: inst.memoryGiB, speed: cpuSpeed(inst, calibration), gpu };
}

/**
 * Servers needed in each minute to keep that minute's p95 within `targetMs` (0 for a minute without
 * traffic); undefined when no number of servers can (the service time alone misses it).
 */
export function serversPerMinute(service: ServiceTime, rates: number[], targetMs: number): number[] | undefined {
  const memo = new Map<number, number | undefined>();
  const out: number[] = [];
  for (const rps of rates) {
    if (rps <= 0) {
      out.push(0);
      continue;
    }
    if (!memo.has(rps)) memo.set(rps, serversForP95(service, rps / 1000, targetMs));
    const c = memo.get(rps);
    if (c === undefined) return undefined;
    out.push(c);
  }
  return out;
}

/** Instances per hour: each hour sized for its busiest minute (scaled once an hour, ahead of the hour). */
export function hourlyInstances(servers: number[], serversPerInstance: number, minInstances: number): number[] {
  const hours: number[] = [];
  for (let h = 0; h * 60 < servers.length; h++) {
    const peak = Math.max(...servers.slice(h * 60, h * 60 + 60));
    hours.push(Math.max(minInstances, Math.ceil(peak / serversPerInstance)));
  }
  return hours;
}

/** A fleet state of one minute: a share of that minute's requests served by `servers`, with `extraMs` added. */
export interface MinuteState {
  weight: number;
  servers: number;
  extraMs?: number;
}

/**
 * Response-time components of a whole schedule, weighted by each minute's requests; identical states of
 * different minutes are merged (a steady day is one component).
 */
export function scheduleComponents(
  service: ServiceTime,
  rates: number[],
  statesOfMinute: (minute: number) => MinuteState[],
): ResponseComponent[] {
  const merged = new Map<string, { weight: number; rps: number; servers: number; extraMs: number }>();
  for (const [m, rps] of rates.entries()) {
    if (rps <= 0) continue;
    for (const st of statesOfMinute(m)) {
      if (st.weight <= 0) continue;
      const key = `${rps}|${st.servers}|${st.extraMs ?? 0}`;
      const e = merged.get(key);
      if (e) e.weight += rps * st.weight;
      else merged.set(key, { weight: rps * st.weight, rps, servers: st.servers, extraMs: st.extraMs ?? 0 });
    }
  }
  return [...merged.values()].map((e) =>
    e.servers < 1
      ? { weight: e.weight, tail: () => 1 }
      : responseComponent(e.weight, service, e.servers, e.rps / 1000, e.extraMs),
  );
}

export interface ExpectedLatency {
  p95Ms: number;
  withinSloShare: number;
}

/** p95 and share within the SLO, the users' round trip added to every request. */
export function expectedLatency(components: ResponseComponent[], sloMs: number, rttMs: number): ExpectedLatency {
  if (components.length === 0) return { p95Ms: rttMs, withinSloShare: 1 };
  return {
    p95Ms: mixtureQuantile(components, 0.95) + rttMs,
    withinSloShare: shareWithin(components, sloMs - rttMs),
  };
}
