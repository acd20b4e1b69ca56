/**
 * `ferry prices refresh`: the providers' public price files, downloaded by the user, turned into a new
 * catalog directory. The rows of each provider and region the files cover replace that provider's rows
 * for that region in the base catalog (the shipped snapshot by default); every other row — other regions,
 * providers not given, serverless and egress, which these files do not hold — is kept as it was, with its
 * own source and date. AWS spot history and Spot Instance Advisor data update the spot figures of
 * whichever AWS rows result. The new catalog is validated before anything is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { instanceKey, sortByKey } from '../canonical';
import { buildCatalog, type CatalogManifest, loadCatalog, MANIFEST_FILE } from '../load';
import type { InstancePrice, PriceCatalog, Provider } from '../types';
import { parseAwsOffer } from './awsOffer';
import { applyAwsSpot, parseAwsSpotHistory, parseSpotAdvisor } from './awsSpot';
import { parseAzureRetail } from './azureRetail';
import { parseGcpSkus } from './gcpSkus';
import { RefreshError, type RefreshOptions } from './input';

export interface RefreshInputs {
  awsOffer?: string[];
  awsSpot?: string[];
  awsAdvisor?: string;
  gcpSkus?: string[];
  azureRetail?: string[];
}

export interface RefreshResult {
  catalog: PriceCatalog;
  /** The data files to write, by name, as JSON values. */
  files: { name: string; content: unknown }[];
  manifest: CatalogManifest;
  /** Per provider and region refreshed: how many rows. */
  refreshed: { provider: Provider; region: string; rows: number }[];
  skipped: string[];
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RefreshError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RefreshError(file, `is not JSON (${(err as Error).message})`);
  }
}

const readAll = (files: string[] | undefined) => (files ?? []).map((file) => ({ file, content: readJson(file) }));

const INSTANCE_FILES: Record<Provider, string> = {
  aws: 'aws-instances.json',
  gcp: 'gcp-instances.json',
  azure: 'azure-instances.json',
};

/** Builds the refreshed catalog in memory from the given files; `base` supplies every row not refreshed. */
export function refreshCatalog(inputs: RefreshInputs, o: RefreshOptions, base: PriceCatalog = loadCatalog()) {
  const skipped: string[] = [];
  const fresh: InstancePrice[] = [];
  for (const { file, content } of readAll(inputs.awsOffer)) {
    const r = parseAwsOffer(content, file, o);
    fresh.push(...r.rows);
    skipped.push(...r.skipped);
  }
  for (const parsed of [
    inputs.gcpSkus?.length ? parseGcpSkus(readAll(inputs.gcpSkus), o) : undefined,
    inputs.azureRetail?.length ? parseAzureRetail(readAll(inputs.azureRetail), o) : undefined,
  ]) {
    if (!parsed) continue;
    fresh.push(...parsed.rows);
    skipped.push(...parsed.skipped);
  }
  const spot = inputs.awsSpot?.length ? parseAwsSpotHistory(readAll(inputs.awsSpot)) : undefined;
  const bands = inputs.awsAdvisor ? parseSpotAdvisor(readJson(inputs.awsAdvisor), inputs.awsAdvisor) : undefined;
  if (!fresh.length && !spot && !bands)
    throw new RefreshError('refresh', 'the files given hold no row for the types and regions selected');

  // A provider/region the files cover is replaced as a whole: types no longer offered there go.
  const covered = new Set(fresh.map((r) => `${r.provider}/${r.region}`));
  const kept = base.instances.filter((r) => !covered.has(`${r.provider}/${r.region}`));
  const instances = applyAwsSpot(sortByKey([...kept, ...fresh], instanceKey), spot, bands, o, skipped);

  const manifest: CatalogManifest = {
    schemaVersion: 1,
    snapshotDate: o.retrieved,
    files: [...Object.values(INSTANCE_FILES), 'serverless.json', 'egress.json'],
  };
  const files = [
    ...(Object.entries(INSTANCE_FILES) as [Provider, string][]).map(([p, name]) => ({
      name,
      content: { kind: 'instances', rows: instances.filter((r) => r.provider === p) },
    })),
    { name: 'serverless.json', content: { kind: 'serverless', rows: base.serverless } },
    { name: 'egress.json', content: { kind: 'egress', rows: base.egress } },
  ];
  // Validated as the loader will read it: a format change upstream is refused here, not at plan time.
  const catalog = buildCatalog(manifest, files);
  const counts = new Map<string, number>();
  for (const r of fresh) counts.set(`${r.provider}/${r.region}`, (counts.get(`${r.provider}/${r.region}`) ?? 0) + 1);
  const refreshed = [...counts].map(([k, rows]) => {
    const [provider, region] = k.split('/') as [Provider, string];
    return { provider, region, rows };
  });
  return { catalog, files, manifest, refreshed, skipped } satisfies RefreshResult;
}

/** Writes a refreshed catalog into `dir` (made if missing), the manifest last. */
export function writeCatalog(dir: string, result: Pick<RefreshResult, 'files' | 'manifest'>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of result.files) fs.writeFileSync(path.join(dir, f.name), `${JSON.stringify(f.content, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), `${JSON.stringify(result.manifest, null, 2)}\n`);
}
