/**
 * `ferry traffic` and `ferry scale`: a served deployment's traffic split and header rules, and its
 * replica counts, autoscaling and scale to zero, shown and changed through the gateway (via the SDK).
 * Flags are parsed here into SDK changes, so a malformed one is refused before anything is contacted.
 */
import {
  type FerryClient,
  FerryError,
  type GatewayDeploymentStatus,
  type ScalingChange,
  type TrafficPolicy,
  type TrafficRule,
} from '../sdk';
import { durationFlag, positiveInt } from './flags';

// ---- ferry traffic ----

/** `ferry traffic`'s flags as commander reads them. */
export interface TrafficFlags {
  split?: string;
  rule?: string[];
  clearRules?: boolean;
}

/** What `ferry traffic` should change; undefined fields stay as they are. */
export interface TrafficRequest {
  split?: Record<string, number>;
  /** Rules to add (a rule for the same header and value replaces the old one). */
  addRules: TrafficRule[];
  clearRules: boolean;
}

/** `a=90,b=10` → {a: 90, b: 10}. The sum and the names are checked by the SDK against the deployment. */
export function parseSplit(raw: string): Record<string, number> {
  const split: Record<string, number> = {};
  for (const part of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([^=\s]+)\s*=\s*(\d+(?:\.\d+)?)%?$/.exec(part);
    if (!m) throw new FerryError(`--split: "${part}" is not revision=percent (example: --split stable=90,canary=10)`);
    if (m[1] in split) throw new FerryError(`--split: revision "${m[1]}" is given twice`);
    split[m[1]] = Number(m[2]);
  }
  if (Object.keys(split).length === 0)
    throw new FerryError('--split: give revision=percent pairs, e.g. --split stable=90,canary=10');
  return split;
}

/** `header:value=revision` → a rule. Header names have no ':' and revision names no '=', so the value may hold either. */
export function parseRule(raw: string): TrafficRule {
  const colon = raw.indexOf(':');
  const equals = raw.lastIndexOf('=');
  if (colon <= 0 || equals < colon)
    throw new FerryError(`--rule: "${raw}" is not header:value=revision (example: --rule x-user-group:beta=canary)`);
  const header = raw.slice(0, colon).trim().toLowerCase();
  const revision = raw.slice(equals + 1).trim();
  if (!header || !revision)
    throw new FerryError(
      `--rule: "${raw}" needs a header name and a revision (example: --rule x-user-group:beta=canary)`,
    );
  return { header, value: raw.slice(colon + 1, equals), revision };
}

export function parseTrafficFlags(flags: TrafficFlags): TrafficRequest | undefined {
  const addRules = (flags.rule ?? []).map(parseRule);
  const clearRules = flags.clearRules === true;
  if (flags.split === undefined && addRules.length === 0 && !clearRules) return undefined; // show only
  return { split: flags.split === undefined ? undefined : parseSplit(flags.split), addRules, clearRules };
}

export async function trafficCommand(
  ferry: FerryClient,
  ref: string,
  request: TrafficRequest | undefined,
  json: boolean,
): Promise<void> {
  let status: GatewayDeploymentStatus;
  if (!request) {
    status = await ferry.gatewayStatus(ref);
  } else {
    const change: TrafficPolicy = {};
    if (request.split) change.split = request.split;
    if (request.clearRules || request.addRules.length) {
      const kept = request.clearRules ? [] : (await ferry.gatewayStatus(ref)).traffic.rules;
      const replaced = (r: TrafficRule) => request.addRules.some((a) => a.header === r.header && a.value === r.value);
      change.rules = [...kept.filter((r) => !replaced(r)), ...request.addRules];
    }
    status = await ferry.setTraffic(ref, change);
    if (!json) console.log(`Traffic of ${status.id} changed (from the next request on; no replica restarted).`);
  }
  if (json) console.log(JSON.stringify(status, null, 2));
  else for (const line of formatTraffic(status)) console.log(line);
}

export function formatTraffic(s: GatewayDeploymentStatus): string[] {
  const lines = [`${s.id} (model ${s.model}): ${s.state}, endpoint ${s.endpoint}`];
  lines.push(
    ...table(
      ['REVISION', 'SPLIT', 'READY/DESIRED', 'SERVES'],
      s.revisions.map((r) => [r.name, `${r.percent}%`, `${r.readyReplicas}/${r.desiredReplicas}`, artifact(r)]),
    ),
  );
  if (s.traffic.rules.length === 0) {
    lines.push('  Header rules: none (x-ferry-variant: <revision> still picks a revision)');
  } else {
    lines.push('  Header rules (before the split, first match wins; x-ferry-variant: <revision> comes first):');
    for (const r of s.traffic.rules) lines.push(`    ${r.header}: ${r.value} → ${r.revision}`);
  }
  return lines;
}

function artifact(r: GatewayDeploymentStatus['revisions'][number]): string {
  if (r.image)
    return `${r.image.registry.replace(/^https?:\/\//, '')}/${r.image.repository}@${r.image.digest ?? r.image.reference}`;
  return r.modelDir ?? '-';
}

// ---- ferry scale ----

/** `ferry scale`'s flags as commander reads them (`--no-scale-to-zero` sets scaleToZero to false). */
export interface ScaleFlags {
  replicas?: string;
  min?: string;
  max?: string;
  targetConcurrency?: string;
  scaleDownDelay?: string;
  scaleToZeroAfter?: string;
  scaleToZero?: boolean;
}

/** The SDK change the flags ask for; undefined when there are none (show only). */
export function parseScaleFlags(flags: ScaleFlags): ScalingChange | undefined {
  const change: ScalingChange = {};
  const autoscalingFlags = (
    [
      ['min', '--min'],
      ['max', '--max'],
      ['targetConcurrency', '--target-concurrency'],
      ['scaleDownDelay', '--scale-down-delay'],
    ] as const
  ).filter(([key]) => flags[key] !== undefined);
  if (flags.replicas !== undefined && autoscalingFlags.length) {
    throw new FerryError(
      `give either --replicas N (a fixed count) or ${autoscalingFlags[0][1]} and the other autoscaling flags, not both`,
    );
  }
  if (flags.replicas !== undefined) {
    change.replicas = positiveInt('--replicas', flags.replicas);
    change.autoscaling = null;
  }
  if (autoscalingFlags.length) {
    const min = flags.min === undefined ? undefined : positiveInt('--min', flags.min);
    const max = flags.max === undefined ? undefined : positiveInt('--max', flags.max);
    if (min !== undefined && max !== undefined && max < min)
      throw new FerryError(`--max (${max}) must be at least --min (${min})`);
    const target = flags.targetConcurrency;
    if (target !== undefined && !(Number(target) > 0))
      throw new FerryError(
        `--target-concurrency must be a number above 0 (requests in flight per replica), got "${target}"`,
      );
    // Only the given knobs: the gateway keeps the others' current values.
    change.autoscaling = {
      ...(min !== undefined ? { minReplicas: min } : {}),
      ...(max !== undefined ? { maxReplicas: max } : {}),
      ...(target !== undefined ? { targetInFlight: Number(target) } : {}),
      ...(flags.scaleDownDelay !== undefined
        ? { scaleDownDelayMs: durationFlag('--scale-down-delay', flags.scaleDownDelay) }
        : {}),
    };
  }
  const noScaleToZero = flags.scaleToZero === false;
  if (flags.scaleToZeroAfter !== undefined && noScaleToZero)
    throw new FerryError('give --scale-to-zero-after or --no-scale-to-zero, not both');
  if (flags.scaleToZeroAfter !== undefined)
    change.scaleToZeroAfterMs = durationFlag('--scale-to-zero-after', flags.scaleToZeroAfter);
  if (noScaleToZero) change.scaleToZeroAfterMs = null;
  return Object.keys(change).length ? change : undefined;
}

export async function scaleCommand(
  ferry: FerryClient,
  ref: string,
  change: ScalingChange | undefined,
  json: boolean,
): Promise<void> {
  const status = change ? await ferry.setScaling(ref, change) : await ferry.gatewayStatus(ref);
  if (json) {
    console.log(JSON.stringify(status, null, 2));
    return;
  }
  if (change) console.log(`Scaling of ${status.id} changed (no replica restarted).`);
  for (const line of formatScaling(status)) console.log(line);
}

export function formatScaling(s: GatewayDeploymentStatus): string[] {
  const lines = [
    `${s.id} (model ${s.model}): ${s.state}${s.state === 'hibernated' ? ` (the next request wakes it with ${s.desiredReplicas} replica(s))` : ''}`,
  ];
  const a = s.autoscaling;
  const perRevision = s.spec.replicas ?? 1;
  if (a) {
    lines.push(
      `  Autoscaling:   ${a.minReplicas}–${a.maxReplicas} replicas per revision, target ${a.targetInFlight} in flight per replica, ` +
        `scale-down delay ${formatMs(a.scaleDownDelayMs)} (stable window ${formatMs(a.stableWindowMs)}, panic window ${formatMs(a.panicWindowMs)} at ${a.panicThreshold}×)`,
    );
  } else {
    lines.push(`  Fixed:         ${perRevision} replica(s) per revision (no autoscaling)`);
  }
  const own = (s.spec.revisions ?? []).filter((r) => r.replicas !== undefined);
  if (own.length)
    lines.push(
      `  Own counts:    ${own.map((r) => `${r.name} ${r.replicas}`).join(', ')} (these revisions do not follow the deployment's count)`,
    );
  lines.push(
    `  Scale to zero: ${s.scaleToZeroAfterMs === null ? 'off (only an explicit hibernate)' : `after ${formatMs(s.scaleToZeroAfterMs)} without a request`}`,
  );
  lines.push(
    ...table(
      ['REVISION', 'DESIRED', 'READY', 'IN FLIGHT', 'HELD', 'REPLICA PIDS'],
      s.revisions.map((r) => [
        r.name,
        String(r.desiredReplicas),
        String(r.readyReplicas),
        String(r.inFlight),
        String(r.heldRequests),
        s.replicas
          .filter((x) => x.revision === r.name)
          .map((x) => `${x.pid}${x.ready ? '' : ' (starting)'}`)
          .join(', ') || '-',
      ]),
    ),
  );
  const events = s.scaleEvents.slice(-5);
  if (events.length) {
    lines.push('  Recent scale events:');
    for (const e of events) lines.push(`    ${e.at}  ${e.revision}: ${e.from} → ${e.to} (${e.reason})`);
  }
  return lines;
}

// ---- helpers ----

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}`;
  return [line(header), ...rows.map(line)];
}

/** 600000 → "10m", 1500 → "1.5s": the units parseDuration reads back. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && (ms % size === 0 || unit === 's')) return `${Number((ms / size).toFixed(3))}${unit}`;
  }
  return `${ms}ms`;
}
