/**
 * Workload profiles: how many requests per second arrive in each minute of a day (or a week, for a trace
 * that long). Every strategy sizes and prices itself from these per-minute rates, so a profile is plain
 * data and parsing one is pure: a trace file is read by the caller and handed in as text, and a bursty
 * shape places its bursts with the random source given (seeded by the caller), never Math.random.
 *
 *   50rps                                      steady
 *   peak=80rps,trough=2rps,peak-hours=9-18     diurnal: the peak within the hours, the trough outside
 *   bursty:burst=120rps,bursts=6,burst-minutes=10,base=0rps
 *                                              `bursts` bursts a day at `burst`, idle (`base`) between
 *   trace:<file>                               per-minute request counts, one a line (or `minute,count`)
 */

export const MINUTES_PER_DAY = 1440;
/** Hours in a billing month, as the providers' monthly figures use (365 × 24 / 12). */
export const HOURS_PER_MONTH = 730;

export type ProfileKind = 'steady' | 'diurnal' | 'bursty' | 'trace';

export interface WorkloadProfile {
  kind: ProfileKind;
  /** The spec as given, for the report. */
  description: string;
  /** Mean requests per second in each minute; 1440 entries (a day) or a multiple of them (a trace). */
  perMinuteRps: number[];
}

export class ProfileError extends Error {
  override name = 'ProfileError';
}

const RATE = /^(\d+(?:\.\d+)?)\s*(rps|rpm|rph)?$/i;

/** "50rps", "300rpm", "2rph", plain "50" (= rps) → requests per second. */
export function parseRate(raw: string): number {
  const m = RATE.exec(raw.trim());
  if (!m) throw new ProfileError(`"${raw}" is not a request rate (examples: 50rps, 300rpm)`);
  const unit = (m[2] ?? 'rps').toLowerCase();
  return Number(m[1]) / (unit === 'rps' ? 1 : unit === 'rpm' ? 60 : 3600);
}

export interface ProfileSources {
  /** Reads a trace file named by `trace:<file>` (the CLI passes fs.readFileSync; tests pass text). */
  readTrace?: (file: string) => string;
  /** Uniform [0, 1) source for placing bursts (lib/seededRandom.ts's seededUniform(seed)). */
  random?: () => number;
}

export function parseProfile(spec: string, sources: ProfileSources = {}): WorkloadProfile {
  const s = spec.trim();
  if (s.startsWith('trace:')) {
    const file = s.slice('trace:'.length);
    if (!sources.readTrace) throw new ProfileError('a trace profile needs its file read by the caller');
    return traceProfile(sources.readTrace(file), s);
  }
  if (s.startsWith('bursty')) return burstyProfile(keyValues(s.replace(/^bursty:?/, ''), s), s, sources.random);
  if (s.includes('=')) return diurnalProfile(keyValues(s, s), s);
  const rps = parseRate(s);
  return { kind: 'steady', description: s, perMinuteRps: new Array(MINUTES_PER_DAY).fill(rps) };
}

function keyValues(body: string, spec: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of body.split(',').filter((p) => p.trim())) {
    const [k, v, ...rest] = part.split('=');
    if (v === undefined || rest.length) throw new ProfileError(`"${part}" in "${spec}" is not key=value`);
    out.set(k.trim(), v.trim());
  }
  return out;
}

function take(kv: Map<string, string>, spec: string, allowed: string[]): void {
  const unknown = [...kv.keys()].filter((k) => !allowed.includes(k));
  if (unknown.length) throw new ProfileError(`unknown key "${unknown[0]}" in "${spec}" (known: ${allowed.join(', ')})`);
}

/** `peak-hours=9-18`: the peak from 09:00 up to 18:00 (UTC, as the trace minutes are). */
function diurnalProfile(kv: Map<string, string>, spec: string): WorkloadProfile {
  take(kv, spec, ['peak', 'trough', 'peak-hours']);
  const peak = kv.get('peak');
  if (!peak) throw new ProfileError(`a diurnal profile needs peak=<rate> ("${spec}")`);
  const peakRps = parseRate(peak);
  const troughRps = parseRate(kv.get('trough') ?? '0');
  const hours = /^(\d{1,2})-(\d{1,2})$/.exec(kv.get('peak-hours') ?? '9-18');
  if (!hours) throw new ProfileError(`peak-hours must be H-H, e.g. 9-18 ("${spec}")`);
  const from = Number(hours[1]);
  const to = Number(hours[2]);
  if (from > 23 || to > 24 || from === to) throw new ProfileError(`peak-hours ${from}-${to} is not a span of the day`);
  const inPeak = (h: number) => (from < to ? h >= from && h < to : h >= from || h < to);
  const perMinuteRps = Array.from({ length: MINUTES_PER_DAY }, (_, m) =>
    inPeak(Math.floor(m / 60)) ? peakRps : troughRps,
  );
  return { kind: 'diurnal', description: spec, perMinuteRps };
}

/**
 * `bursts` bursts of `burst-minutes` minutes at `burst` rps, at `base` rps in between (default 0: long idle
 * gaps). Burst starts are spread over the day: one in each of `bursts` equal slots, at a random offset
 * within its slot, so bursts never overlap and the same random source gives the same day.
 */
function burstyProfile(kv: Map<string, string>, spec: string, random?: () => number): WorkloadProfile {
  take(kv, spec, ['burst', 'bursts', 'burst-minutes', 'base']);
  const burstRps = parseRate(kv.get('burst') ?? '50rps');
  const baseRps = parseRate(kv.get('base') ?? '0');
  const bursts = Number(kv.get('bursts') ?? '4');
  const minutes = Number(kv.get('burst-minutes') ?? '10');
  if (!Number.isInteger(bursts) || bursts < 1) throw new ProfileError(`bursts must be a positive integer ("${spec}")`);
  const slot = Math.floor(MINUTES_PER_DAY / bursts);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > slot)
    throw new ProfileError(`burst-minutes must be an integer from 1 to ${slot} for ${bursts} bursts ("${spec}")`);
  const perMinuteRps = new Array(MINUTES_PER_DAY).fill(baseRps);
  for (let b = 0; b < bursts; b++) {
    const offset = random ? Math.floor(random() * (slot - minutes + 1)) : Math.floor((slot - minutes) / 2);
    for (let m = 0; m < minutes; m++) perMinuteRps[b * slot + offset + m] = burstRps;
  }
  return { kind: 'bursty', description: spec, perMinuteRps };
}

/**
 * Per-minute request counts, one a line, or `minute,count` lines (a header line and `#` comments are
 * skipped). Shorter than a day: repeated to fill one; longer: padded to whole days with zeros.
 */
export function traceProfile(text: string, description = 'trace'): WorkloadProfile {
  const counts: number[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const cell = t.includes(',') ? t.split(',').at(-1)!.trim() : t;
    const n = Number(cell);
    if (!Number.isFinite(n) || n < 0) {
      if (counts.length === 0 && i === 0 && Number.isNaN(n)) continue; // a header
      throw new ProfileError(`trace line ${i + 1}: "${t}" is not a request count`);
    }
    counts.push(n);
  }
  if (counts.length === 0) throw new ProfileError('the trace has no request counts');
  let minutes = counts;
  if (minutes.length < MINUTES_PER_DAY) {
    minutes = Array.from({ length: MINUTES_PER_DAY }, (_, m) => counts[m % counts.length]);
  } else if (minutes.length % MINUTES_PER_DAY) {
    minutes = [...counts, ...new Array(MINUTES_PER_DAY - (counts.length % MINUTES_PER_DAY)).fill(0)];
  }
  return { kind: 'trace', description, perMinuteRps: minutes.map((c) => c / 60) };
}

export function peakRps(p: WorkloadProfile): number {
  return Math.max(...p.perMinuteRps);
}

export function meanRps(p: WorkloadProfile): number {
  return p.perMinuteRps.reduce((a, b) => a + b, 0) / p.perMinuteRps.length;
}

/** Requests in a month of this profile (its days repeated). */
export function requestsPerMonth(p: WorkloadProfile): number {
  return meanRps(p) * HOURS_PER_MONTH * 3600;
}

/** Billed hours of a month per hour of the profile: the profile's span is scaled to 730 h. */
export function monthScale(p: WorkloadProfile): number {
  return HOURS_PER_MONTH / (p.perMinuteRps.length / 60);
}
