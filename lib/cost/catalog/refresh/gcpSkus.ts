/**
 * The Cloud Billing Catalog's Compute Engine SKUs (services/6F81-5844-456A/skus: `skus[]` of description,
 * category {resourceFamily, resourceGroup, usageType}, serviceRegions, pricingInfo[].pricingExpression
 * {usageUnit, tieredRates[].unitPrice {units, nanos}}). Compute Engine bills a machine type as its vCPUs
 * times the series' core SKU plus its GiB times the RAM SKU (plus its GPUs), on demand ("OnDemand") and
 * as Spot VMs ("Preemptible"), per region; so a machine type's price is that sum, not an estimate.
 */
import type { InstancePrice } from '../types';
import { anyMatcher, isObj, RefreshError, type RefreshOptions, tidy } from './input';
import { GCP_MACHINE_TYPES, GCP_SERIES, GCP_ZONES } from './shapes';

export const GCP_SKUS_URL = 'https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus';

type Usage = 'OnDemand' | 'Preemptible';
type Resource = 'CPU' | 'RAM' | 'GPU';
interface SkuPrice {
  price: number;
  skuId: string;
}

/** The first-tier unit price of a SKU's newest pricing info. */
function unitPrice(sku: Record<string, unknown>): number {
  const infos = Array.isArray(sku.pricingInfo) ? sku.pricingInfo : [];
  const info = infos[infos.length - 1];
  const expr = isObj(info) && isObj(info.pricingExpression) ? info.pricingExpression : undefined;
  const tiers = expr && Array.isArray(expr.tieredRates) ? expr.tieredRates : [];
  const first = tiers.find((t) => isObj(t) && Number(t.startUsageAmount ?? 0) === 0) ?? tiers[0];
  if (!isObj(first) || !isObj(first.unitPrice)) return Number.NaN;
  return Number(first.unitPrice.units ?? 0) + Number(first.unitPrice.nanos ?? 0) / 1e9;
}

export function parseGcpSkus(contents: { file: string; content: unknown }[], o: RefreshOptions) {
  // series/resource/usage/region → price
  const prices = new Map<string, SkuPrice>();
  for (const { file, content } of contents) {
    if (!isObj(content) || !Array.isArray(content.skus))
      throw new RefreshError(file, 'not a Cloud Billing Catalog SKU list (it needs "skus": [...])');
    content.skus.forEach((sku, i) => {
      if (!isObj(sku) || typeof sku.description !== 'string' || !isObj(sku.category))
        throw new RefreshError(file, `skus[${i}] lacks a description or category`);
      const cat = sku.category;
      if (cat.resourceFamily !== 'Compute') return;
      const usage = cat.usageType as Usage;
      if (usage !== 'OnDemand' && usage !== 'Preemptible') return;
      const resource = cat.resourceGroup as Resource;
      const description = sku.description.replace(/^Spot Preemptible /, '');
      for (const [series, s] of Object.entries(GCP_SERIES)) {
        const prefix = resource === 'GPU' ? s.gpuSkuPrefix : s.skuPrefix;
        if (!prefix || !description.startsWith(prefix)) continue;
        if (resource !== 'GPU' && !/ (Core|Ram) /.test(`${description.slice(prefix.length)} `)) continue;
        const price = unitPrice(sku);
        if (!(price > 0)) throw new RefreshError(file, `skus[${i}] (${sku.description}) has no first-tier unit price`);
        const regions = Array.isArray(sku.serviceRegions) ? sku.serviceRegions : [];
        for (const region of regions)
          prices.set(`${series}/${resource}/${usage}/${region}`, { price, skuId: String(sku.skuId ?? i) });
      }
    });
  }

  const inRegion = anyMatcher(o.regions);
  const isType = anyMatcher(o.types);
  const regions = new Set([...prices.keys()].map((k) => k.split('/')[3]));
  const rows: InstancePrice[] = [];
  const skipped: string[] = [];
  for (const region of [...regions].sort()) {
    if (inRegion && !inRegion(region)) continue;
    for (const [type, shape] of Object.entries(GCP_MACHINE_TYPES)) {
      if (isType && !isType(type)) continue;
      const series = type.split('-')[0];
      const get = (resource: Resource, usage: Usage) => prices.get(`${series}/${resource}/${usage}/${region}`);
      const cost = (usage: Usage) => {
        const core = get('CPU', usage);
        const ram = get('RAM', usage);
        const gpu = shape.accelerator ? get('GPU', usage) : undefined;
        if (!core || !ram || (shape.accelerator && !gpu)) return undefined;
        const total =
          shape.vcpus * core.price + shape.memoryGiB * ram.price + (gpu ? gpu.price * shape.accelerator!.count : 0);
        const skus = [core, ram, gpu].filter(Boolean).map((s) => s!.skuId);
        return { total: tidy(total), skus };
      };
      const od = cost('OnDemand');
      if (!od) continue; // this series is not sold in this region
      const row: InstancePrice = {
        provider: 'gcp',
        region,
        instanceType: type,
        family: shape.family,
        vcpus: shape.vcpus,
        memoryGiB: shape.memoryGiB,
        arch: shape.arch,
        ...(shape.accelerator ? { accelerator: shape.accelerator } : {}),
        onDemandUsdPerHour: od.total,
        source: {
          url: GCP_SKUS_URL,
          retrieved: o.retrieved,
          note: `${shape.vcpus} vCPU x core + ${shape.memoryGiB} GiB x RAM${shape.accelerator ? ' + GPU' : ''} SKUs ${od.skus.join(', ')}`,
        },
      };
      const spot = cost('Preemptible');
      if (spot && spot.total <= od.total) {
        const zones = GCP_ZONES[region] ?? [region];
        row.spotUsdPerHour = Object.fromEntries(zones.map((z) => [z, spot.total]));
        row.spotSource = {
          url: GCP_SKUS_URL,
          retrieved: o.retrieved,
          note: `Spot VM SKUs ${spot.skus.join(', ')}; priced per region, so every zone carries the region figure${GCP_ZONES[region] ? '' : ' (zones of this region are not in the shapes table: keyed by the region)'}`,
        };
      } else if (!spot) skipped.push(`${type} in ${region}: no Spot VM SKUs, no spot price`);
      rows.push(row);
    }
  }
  return { rows, skipped };
}
