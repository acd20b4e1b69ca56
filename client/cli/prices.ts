/**
 * `ferry prices`: the price catalog the cost engine plans with, as tables (instances, serverless, egress)
 * headed by the snapshot's date and content hash, or as JSON. Figures marked `*` are estimates, not list
 * prices; `--json` carries each row's source and the note on how an estimate was made.
 */
import { filterCatalog } from '../../lib/cost/catalog/filter';
import { CatalogError, loadCatalog } from '../../lib/cost/catalog/load';
import type {
  Architecture,
  InstancePrice,
  PriceCatalog,
  Provider,
  ServerlessPrice,
} from '../../lib/cost/catalog/types';
import { ARCHITECTURES, PROVIDERS } from '../../lib/cost/catalog/validate';
import { FerryError } from '../sdk/errors';
import { positiveInt } from './flags';
import { textTable } from './textTable';

export interface PricesFlags {
  provider?: string;
  region?: string;
  minVcpus?: string;
  arch?: string;
  /** A catalog directory other than the shipped snapshot (e.g. the output of `ferry prices refresh`). */
  catalog?: string;
  json?: boolean;
}

export function parsePricesFlags(o: PricesFlags) {
  if (o.provider !== undefined && !PROVIDERS.includes(o.provider as Provider))
    throw new FerryError(`--provider must be one of ${PROVIDERS.join(', ')}, got "${o.provider}"`);
  if (o.arch !== undefined && !ARCHITECTURES.includes(o.arch as Architecture))
    throw new FerryError(`--arch must be one of ${ARCHITECTURES.join(', ')}, got "${o.arch}"`);
  if (o.region !== undefined && !/^[a-z0-9*-]+$/.test(o.region))
    throw new FerryError(`--region must be a region name or a pattern such as us-*, got "${o.region}"`);
  return {
    provider: o.provider as Provider | undefined,
    region: o.region,
    minVcpus: o.minVcpus === undefined ? undefined : positiveInt('--min-vcpus', o.minVcpus),
    arch: o.arch as Architecture | undefined,
  };
}

export function pricesCommand(o: PricesFlags): void {
  const filter = parsePricesFlags(o);
  let catalog: PriceCatalog;
  try {
    catalog = loadCatalog(o.catalog);
  } catch (err) {
    if (err instanceof CatalogError) throw new FerryError(err.message);
    throw err;
  }
  const shown = filterCatalog(catalog, filter);
  if (o.json) {
    console.log(JSON.stringify(shown, null, 2));
    return;
  }
  for (const line of renderPrices(shown)) console.log(line);
}

const usd = (n: number) => `$${n < 0.01 ? n.toPrecision(3) : n.toFixed(4).replace(/0{1,2}$/, '')}`;
const star = (estimate: boolean | undefined) => (estimate ? '*' : '');

/** The tables, as lines: a header naming the snapshot, then one table per kind that has rows. */
export function renderPrices(c: PriceCatalog): string[] {
  const out = [`Price catalog of ${c.snapshotDate} (schema ${c.schemaVersion}), content sha256 ${c.contentHash}`];
  if (!c.instances.length && !c.serverless.length && !c.egress.length) {
    out.push('', 'No rows match.');
    return out;
  }
  if (c.instances.length) {
    const header = [
      'PROVIDER',
      'REGION',
      'TYPE',
      'FAMILY',
      'VCPU',
      'MEM GiB',
      'ARCH',
      'GPU',
      'ON-DEMAND $/h',
      'SPOT $/h',
    ];
    header.push('INTERRUPTION');
    out.push('', `Instances (${c.instances.length}):`, ...textTable([header, ...c.instances.map(instanceCells)]));
  }
  if (c.serverless.length) {
    const header = ['PROVIDER', 'SERVICE', 'REGION', 'ARCH', '$/M REQ', '$/GB-s', '$/vCPU-s', 'MAX MEM', 'MAX VCPU'];
    header.push('TIMEOUT', 'CONC');
    out.push('', `Serverless (${c.serverless.length}):`, ...textTable([header, ...c.serverless.map(serverlessCells)]));
  }
  if (c.egress.length) {
    const rows = c.egress.map((r) => [r.provider, r.region, `${usd(r.usdPerGb)}${star(r.source.estimate)}`]);
    out.push('', `Internet egress (${c.egress.length}):`, ...textTable([['PROVIDER', 'REGION', '$/GB'], ...rows]));
  }
  out.push(
    '',
    '* an estimate, not a list price: `ferry prices --json` gives each row its source, retrieval date and how it was estimated.',
  );
  return out;
}

function spotCell(r: InstancePrice): string {
  if (!r.spotUsdPerHour) return '-';
  const prices = Object.values(r.spotUsdPerHour);
  const lo = Math.min(...prices);
  const hi = Math.max(...prices);
  const range = lo === hi ? usd(lo) : `${usd(lo)}-${usd(hi)}`;
  const estimate = (r.spotSource ?? r.source).estimate;
  return `${range}${star(estimate)} (${prices.length} zone${prices.length === 1 ? '' : 's'})`;
}

function instanceCells(r: InstancePrice): string[] {
  const gpu = r.accelerator ? `${r.accelerator.count}x ${r.accelerator.kind}` : '-';
  return [
    r.provider,
    r.region,
    r.instanceType,
    r.family,
    String(r.vcpus),
    String(r.memoryGiB),
    r.arch,
    gpu,
    `${usd(r.onDemandUsdPerHour)}${star(r.source.estimate)}`,
    spotCell(r),
    r.interruption ?? '-',
  ];
}

function serverlessCells(r: ServerlessPrice): string[] {
  const e = star(r.source.estimate);
  const rate = (n: number) => (n === 0 ? '-' : `${n.toPrecision(3)}${e}`);
  return [
    r.provider,
    r.service,
    r.region,
    r.arch,
    `${usd(r.usdPerMillionRequests)}${e}`,
    rate(r.usdPerGbSecond),
    rate(r.usdPerVcpuSecond),
    `${r.limits.maxMemoryGiB} GiB`,
    String(r.limits.maxVcpus),
    `${r.limits.maxTimeoutSeconds}s`,
    String(r.limits.maxConcurrencyPerInstance),
  ];
}

export interface PricesRefreshFlags {
  awsOffer?: string[];
  awsSpot?: string[];
  awsAdvisor?: string;
  gcpSkus?: string[];
  azureRetail?: string[];
  regions?: string;
  types?: string;
  date?: string;
  from?: string;
  out: string;
}

export async function pricesRefreshCommand(o: PricesRefreshFlags): Promise<void> {
  const { refreshCatalog, writeCatalog } = await import('../../lib/cost/catalog/refresh/refresh');
  const { RefreshError } = await import('../../lib/cost/catalog/refresh/input');
  const { isIsoDate } = await import('../../lib/cost/catalog/validate');
  const { splitList } = await import('./flags');
  if (!o.awsOffer && !o.awsSpot && !o.awsAdvisor && !o.gcpSkus && !o.azureRetail)
    throw new FerryError(
      'give at least one price file: --aws-offer, --aws-spot, --aws-advisor, --gcp-skus or --azure-retail (see --help)',
    );
  const retrieved = o.date ?? new Date().toISOString().slice(0, 10);
  if (!isIsoDate(retrieved)) throw new FerryError(`--date must be a date YYYY-MM-DD, got "${o.date}"`);
  let result: Awaited<ReturnType<typeof refreshCatalog>>;
  try {
    const base = loadCatalog(o.from);
    result = refreshCatalog(
      o,
      {
        retrieved,
        regions: o.regions ? splitList(o.regions) : undefined,
        types: o.types ? splitList(o.types) : undefined,
      },
      base,
    );
  } catch (err) {
    if (err instanceof RefreshError || err instanceof CatalogError) throw new FerryError(err.message);
    throw err;
  }
  writeCatalog(o.out, result);
  const c = result.catalog;
  console.log(`Wrote the price catalog of ${c.snapshotDate} to ${o.out} (content sha256 ${c.contentHash}).`);
  for (const r of result.refreshed) console.log(`  refreshed ${r.provider} ${r.region}: ${r.rows} instance types`);
  if (o.awsSpot) console.log('  AWS spot prices per zone from the spot price history given');
  if (o.awsAdvisor) console.log('  AWS interruption bands from the Spot Instance Advisor data given');
  console.log(
    `  ${c.instances.length} instance rows in all, ${c.serverless.length} serverless and ${c.egress.length} egress rows kept from the base catalog`,
  );
  if (result.skipped.length) {
    console.log(`  left out (${result.skipped.length}):`);
    for (const s of result.skipped.slice(0, 20)) console.log(`    ${s}`);
    if (result.skipped.length > 20) console.log(`    ... and ${result.skipped.length - 20} more`);
  }
  console.log(`See it with: ferry prices --catalog ${o.out}`);
}
