/**
 * The AWS Price List offer file for EC2 in one region (offers/v1.0/aws/AmazonEC2/current/<region>/index.json):
 * `products` keyed by SKU, each with `attributes` (instanceType, vcpu, memory "8 GiB", physicalProcessor,
 * instanceFamily, operatingSystem, tenancy, preInstalledSw, capacitystatus, regionCode, gpu), and
 * `terms.OnDemand[sku][offerTermCode].priceDimensions[rateCode].pricePerUnit.USD` per hour. Only the
 * plain Linux, shared-tenancy, no-preinstalled-software, used-capacity rate is a catalog row.
 */
import type { InstancePrice } from '../types';
import { anyMatcher, isObj, priceOf, RefreshError, type RefreshOptions, tidy } from './input';
import { AWS_GPU_FAMILIES } from './shapes';

export const AWS_OFFER_URL = (region: string) =>
  `https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/${region}/index.json`;

const FAMILIES: Record<string, string> = {
  'General purpose': 'general-purpose',
  'Compute optimized': 'compute-optimized',
  'GPU instance': 'gpu',
  'Memory optimized': 'memory-optimized',
};
/** Without --types, the families the cost engine plans with. */
const DEFAULT_FAMILIES = new Set(['general-purpose', 'compute-optimized', 'gpu']);

export interface ParsedRows {
  rows: InstancePrice[];
  /** Entries left out, with why (an unknown GPU model, a missing price). */
  skipped: string[];
}

export function parseAwsOffer(content: unknown, file: string, o: RefreshOptions): ParsedRows {
  if (!isObj(content) || !isObj(content.products) || !isObj(content.terms) || !isObj(content.terms.OnDemand))
    throw new RefreshError(file, 'not an AWS Price List offer file (it needs "products" and "terms.OnDemand")');
  if (content.offerCode !== undefined && content.offerCode !== 'AmazonEC2')
    throw new RefreshError(file, `offer ${JSON.stringify(content.offerCode)} is not AmazonEC2`);
  const onDemand = content.terms.OnDemand as Record<string, unknown>;
  const inRegion = anyMatcher(o.regions);
  const isType = anyMatcher(o.types);
  const version = typeof content.version === 'string' ? content.version : 'unknown';
  const published = typeof content.publicationDate === 'string' ? content.publicationDate : 'unknown';
  const out: ParsedRows = { rows: [], skipped: [] };

  for (const [sku, product] of Object.entries(content.products)) {
    if (!isObj(product) || !isObj(product.attributes)) throw new RefreshError(file, `product ${sku} has no attributes`);
    const a = product.attributes as Record<string, string | undefined>;
    if (product.productFamily !== 'Compute Instance') continue;
    if (a.operatingSystem !== 'Linux' || a.tenancy !== 'Shared' || a.preInstalledSw !== 'NA') continue;
    if (a.capacitystatus !== undefined && a.capacitystatus !== 'Used') continue;
    if (a.licenseModel !== undefined && a.licenseModel !== 'No License required') continue;
    const type = a.instanceType;
    const region = a.regionCode;
    if (!type || !region) throw new RefreshError(file, `product ${sku} lacks instanceType or regionCode`);
    const family = FAMILIES[a.instanceFamily ?? ''] ?? 'other';
    if (isType ? !isType(type) : !DEFAULT_FAMILIES.has(family)) continue;
    if (inRegion && !inRegion(region)) continue;

    const price = onDemandHourly(onDemand[sku]);
    if (!(price > 0)) {
      out.skipped.push(`${type} in ${region}: no positive on-demand hourly price (sku ${sku})`);
      continue;
    }
    const vcpus = Number(a.vcpu);
    const memoryGiB = Number((a.memory ?? '').replace(/,/g, '').replace(/\s*GiB$/, ''));
    if (!(vcpus > 0) || !(memoryGiB > 0))
      throw new RefreshError(file, `product ${sku} (${type}): vcpu ${a.vcpu} or memory ${a.memory} is not a size`);
    const row: InstancePrice = {
      provider: 'aws',
      region,
      instanceType: type,
      family,
      vcpus,
      memoryGiB,
      arch: /graviton/i.test(a.physicalProcessor ?? '') ? 'arm64' : 'x86_64',
      onDemandUsdPerHour: tidy(price),
      source: {
        url: AWS_OFFER_URL(region),
        retrieved: o.retrieved,
        note: `offer file version ${version} published ${published}, sku ${sku}`,
      },
    };
    const gpus = Number(a.gpu ?? 0);
    if (gpus > 0) {
      const model = AWS_GPU_FAMILIES[type.split('.')[0]];
      if (!model) {
        out.skipped.push(
          `${type} in ${region}: its GPU model is not in the shapes table (lib/cost/catalog/refresh/shapes.ts)`,
        );
        continue;
      }
      row.accelerator = { ...model, count: gpus };
      row.family = 'gpu';
    }
    out.rows.push(row);
  }
  return out;
}

/** The hourly USD price of a SKU's on-demand term, or NaN. */
function onDemandHourly(terms: unknown): number {
  if (!isObj(terms)) return Number.NaN;
  for (const term of Object.values(terms)) {
    if (!isObj(term) || !isObj(term.priceDimensions)) continue;
    for (const dim of Object.values(term.priceDimensions)) {
      if (!isObj(dim) || dim.unit !== 'Hrs' || !isObj(dim.pricePerUnit)) continue;
      return priceOf(dim.pricePerUnit.USD);
    }
  }
  return Number.NaN;
}
