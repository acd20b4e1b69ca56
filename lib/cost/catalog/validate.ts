/**
 * Checks the catalog's data rows field by field. Every problem is reported with the file, the row (its
 * index and what it is) and the field, so a bad edit to a data file, or a refresh from a changed provider
 * format, is refused with a message that says where to look. Unknown fields are refused too: a misspelt
 * optional field would otherwise vanish silently.
 */
import type {
  Accelerator,
  Architecture,
  EgressPrice,
  InstancePrice,
  InterruptionBand,
  PriceSource,
  Provider,
  ServerlessPrice,
} from './types';

export const PROVIDERS: readonly Provider[] = ['aws', 'gcp', 'azure'];
export const ARCHITECTURES: readonly Architecture[] = ['x86_64', 'arm64'];
export const INTERRUPTION_BANDS: readonly InterruptionBand[] = ['<5%', '5-10%', '10-15%', '15-20%', '>20%'];
export const ROW_KINDS = ['instances', 'serverless', 'egress'] as const;
export type RowKind = (typeof ROW_KINDS)[number];

export class CatalogError extends Error {
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? `price catalog: ${problems[0]}`
        : `price catalog: ${problems.length} problems:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : ''}`,
    );
    this.name = 'CatalogError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));
export const isIsoDate = (s: unknown): s is string =>
  typeof s === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));

/** Reads the fields of one object, recording a problem (prefixed with where it is) for each bad one. */
class Fields {
  private readonly seen = new Set<string>();
  constructor(
    private readonly obj: Obj,
    private readonly where: string,
    private readonly problems: string[],
  ) {}

  private fail(field: string, want: string): undefined {
    this.problems.push(`${this.where}: ${field} must be ${want}, got ${show(this.obj[field])}`);
    return undefined;
  }

  url(field: string): string | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    return typeof v === 'string' && /^https:\/\/[^\s/]+\.[^\s]+$/.test(v) ? v : this.fail(field, 'an https:// URL');
  }

  /** Every key of the object (all of them count as read). */
  keys(): string[] {
    for (const k of Object.keys(this.obj)) this.seen.add(k);
    return Object.keys(this.obj);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined;
  }

  str(field: string): string | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    return typeof v === 'string' && v.trim() !== '' ? v : this.fail(field, 'a non-empty string');
  }

  oneOf<T extends string>(field: string, allowed: readonly T[]): T | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    return allowed.includes(v as T) ? (v as T) : this.fail(field, `one of ${allowed.join(', ')}`);
  }

  /** A finite number, > 0 unless zero is allowed (a free allowance, a free request price). */
  num(field: string, opts: { zero?: boolean; integer?: boolean } = {}): number | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (opts.zero ? v >= 0 : v > 0) &&
      (!opts.integer || Number.isInteger(v));
    return ok ? v : this.fail(field, `a${opts.integer ? 'n integer' : ' number'} ${opts.zero ? '>= 0' : '> 0'}`);
  }

  date(field: string): string | undefined {
    this.seen.add(field);
    return isIsoDate(this.obj[field]) ? (this.obj[field] as string) : this.fail(field, 'a date YYYY-MM-DD');
  }

  bool(field: string): boolean | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    return typeof v === 'boolean' ? v : this.fail(field, 'true or false');
  }

  /** A nested object, checked by `read` with this field's name in the messages. */
  obj_<T>(field: string, read: (f: Fields) => T): T | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    if (!isObj(v)) return this.fail(field, 'an object');
    const inner = new Fields(v, `${this.where}: ${field}`, this.problems);
    const out = read(inner);
    inner.done();
    return out;
  }

  /** Refuses the fields nobody read: misspelt or unknown. */
  done(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) this.problems.push(`${this.where}: unknown field ${JSON.stringify(k)}`);
    }
  }
}

function readSource(f: Fields): PriceSource {
  const source: PriceSource = { url: f.url('url') as string, retrieved: f.date('retrieved') as string };
  if (f.has('estimate')) source.estimate = f.bool('estimate');
  if (f.has('note')) source.note = f.str('note');
  return source;
}

function readAccelerator(f: Fields): Accelerator {
  return {
    kind: f.str('kind') as string,
    count: f.num('count', { integer: true }) as number,
    memoryGiB: f.num('memoryGiB') as number,
  };
}

function readInstance(f: Fields): InstancePrice {
  const row: InstancePrice = {
    provider: f.oneOf('provider', PROVIDERS) as Provider,
    region: f.str('region') as string,
    instanceType: f.str('instanceType') as string,
    family: f.str('family') as string,
    vcpus: f.num('vcpus') as number,
    memoryGiB: f.num('memoryGiB') as number,
    arch: f.oneOf('arch', ARCHITECTURES) as Architecture,
    onDemandUsdPerHour: f.num('onDemandUsdPerHour') as number,
    source: f.obj_('source', readSource) as PriceSource,
  };
  if (f.has('accelerator')) row.accelerator = f.obj_('accelerator', readAccelerator);
  if (f.has('spotUsdPerHour')) row.spotUsdPerHour = f.obj_('spotUsdPerHour', readZonePrices);
  if (f.has('interruption')) row.interruption = f.oneOf('interruption', INTERRUPTION_BANDS);
  if (f.has('spotSource')) row.spotSource = f.obj_('spotSource', readSource);
  return row;
}

/** zone → $/h: every value a positive number. */
function readZonePrices(f: Fields): Record<string, number> {
  const out: Record<string, number> = {};
  for (const zone of f.keys()) out[zone] = f.num(zone) as number;
  return out;
}

function readServerless(f: Fields): ServerlessPrice {
  const row: ServerlessPrice = {
    provider: f.oneOf('provider', PROVIDERS) as Provider,
    service: f.str('service') as string,
    region: f.str('region') as string,
    arch: f.oneOf('arch', ARCHITECTURES) as Architecture,
    usdPerMillionRequests: f.num('usdPerMillionRequests', { zero: true }) as number,
    usdPerGbSecond: f.num('usdPerGbSecond', { zero: true }) as number,
    usdPerVcpuSecond: f.num('usdPerVcpuSecond', { zero: true }) as number,
    limits: f.obj_('limits', (l) => {
      const limits: ServerlessPrice['limits'] = {
        maxMemoryGiB: l.num('maxMemoryGiB') as number,
        maxVcpus: l.num('maxVcpus') as number,
        maxTimeoutSeconds: l.num('maxTimeoutSeconds') as number,
        maxRequestBytes: l.num('maxRequestBytes', { integer: true }) as number,
        maxConcurrencyPerInstance: l.num('maxConcurrencyPerInstance', { integer: true }) as number,
      };
      if (l.has('maxImageBytes')) limits.maxImageBytes = l.num('maxImageBytes', { integer: true });
      return limits;
    }) as ServerlessPrice['limits'],
    source: f.obj_('source', readSource) as PriceSource,
  };
  if (f.has('freeTier')) {
    row.freeTier = f.obj_('freeTier', (t) => ({
      requests: t.num('requests', { zero: true }) as number,
      gbSeconds: t.num('gbSeconds', { zero: true }) as number,
      vcpuSeconds: t.num('vcpuSeconds', { zero: true }) as number,
    }));
  }
  return row;
}

function readEgress(f: Fields): EgressPrice {
  return {
    provider: f.oneOf('provider', PROVIDERS) as Provider,
    region: f.str('region') as string,
    usdPerGb: f.num('usdPerGb') as number,
    source: f.obj_('source', readSource) as PriceSource,
  };
}

/** A short name for a row in messages: `row 3 (m7g.large in us-east-1)`. */
function rowLabel(kind: RowKind, index: number, raw: unknown): string {
  const r = isObj(raw) ? raw : {};
  const what = kind === 'instances' ? r.instanceType : kind === 'serverless' ? r.service : r.provider;
  const name = [what, r.region].filter((x) => typeof x === 'string');
  return `row ${index}${name.length ? ` (${name.join(' in ')})` : ''}`;
}

export interface CheckedRows {
  instances: InstancePrice[];
  serverless: ServerlessPrice[];
  egress: EgressPrice[];
}

/** Checks one data file's rows of one kind; problems are appended, the good rows returned. */
export function checkRows(file: string, kind: RowKind, rows: unknown[], problems: string[]): CheckedRows {
  const out: CheckedRows = { instances: [], serverless: [], egress: [] };
  rows.forEach((raw, index) => {
    const where = `${file} ${rowLabel(kind, index, raw)}`;
    if (!isObj(raw)) {
      problems.push(`${where}: must be an object, got ${show(raw)}`);
      return;
    }
    const before = problems.length;
    const f = new Fields(raw, where, problems);
    if (kind === 'instances') {
      const row = readInstance(f);
      f.done();
      if (problems.length === before) checkInstanceConsistency(row, where, problems);
      if (problems.length === before) out.instances.push(row);
    } else if (kind === 'serverless') {
      const row = readServerless(f);
      f.done();
      if (problems.length === before) out.serverless.push(row);
    } else {
      const row = readEgress(f);
      f.done();
      if (problems.length === before) out.egress.push(row);
    }
  });
  return out;
}

/** Cross-field rules a per-field check cannot see. */
function checkInstanceConsistency(row: InstancePrice, where: string, problems: string[]): void {
  if (row.family === 'gpu' && !row.accelerator) problems.push(`${where}: accelerator is required for a gpu family row`);
  if (row.spotUsdPerHour) {
    const zones = Object.keys(row.spotUsdPerHour);
    if (!zones.length)
      problems.push(`${where}: spotUsdPerHour has no zone (leave it out when there is no spot market)`);
    for (const zone of zones) {
      if (!zone.startsWith(row.region))
        problems.push(`${where}: spotUsdPerHour zone ${JSON.stringify(zone)} is not in region ${row.region}`);
      if (row.spotUsdPerHour[zone] > row.onDemandUsdPerHour)
        problems.push(`${where}: spotUsdPerHour.${zone} (${row.spotUsdPerHour[zone]}) is above the on-demand price`);
    }
  }
  if (row.interruption && !row.spotUsdPerHour) problems.push(`${where}: interruption is given without spotUsdPerHour`);
}
