/**
 * The Azure Retail Prices API answer (prices.azure.com/api/retail/prices, `Items[]` of armRegionName,
 * armSkuName, skuName, productName, meterName, retailPrice, unitOfMeasure, type, currencyCode). A size's
 * pay-as-you-go Linux price is the Consumption item whose product is not a Windows one and whose sku name
 * has neither "Spot" nor "Low Priority"; its Spot price is the item whose sku name ends in "Spot".
 */
import type { InstancePrice } from '../types';
import { anyMatcher, isObj, RefreshError, type RefreshOptions, tidy } from './input';
import { AZURE_SIZES, AZURE_ZONED_REGIONS } from './shapes';

export const AZURE_RETAIL_URL = 'https://prices.azure.com/api/retail/prices';

export function parseAzureRetail(contents: { file: string; content: unknown }[], o: RefreshOptions) {
  const inRegion = anyMatcher(o.regions);
  const isType = anyMatcher(o.types);
  // region/size → { payg, spot } with meter ids
  const found = new Map<string, { payg?: [number, string]; spot?: [number, string] }>();
  for (const { file, content } of contents) {
    if (!isObj(content) || !Array.isArray(content.Items))
      throw new RefreshError(file, 'not an Azure Retail Prices answer (it needs "Items": [...])');
    content.Items.forEach((item, i) => {
      if (!isObj(item)) throw new RefreshError(file, `Items[${i}] is not an object`);
      const { armRegionName: region, armSkuName: size, skuName, productName, retailPrice } = item;
      if (item.serviceName !== undefined && item.serviceName !== 'Virtual Machines') return;
      if (item.type !== 'Consumption' || item.unitOfMeasure !== '1 Hour') return;
      if (item.currencyCode !== undefined && item.currencyCode !== 'USD')
        throw new RefreshError(
          file,
          `Items[${i}] is priced in ${item.currencyCode}: ask the API for USD (currencyCode='USD')`,
        );
      if (typeof region !== 'string' || typeof size !== 'string' || typeof skuName !== 'string') return;
      if (typeof productName === 'string' && /Windows/.test(productName)) return;
      if (/Low Priority/.test(skuName) || !(size in AZURE_SIZES)) return;
      if (typeof retailPrice !== 'number' || !(retailPrice > 0))
        throw new RefreshError(file, `Items[${i}] (${size} in ${region}) has no positive retailPrice`);
      const key = `${region}/${size}`;
      const entry = found.get(key) ?? {};
      const meter = String(item.meterId ?? item.skuId ?? i);
      if (/ Spot$/.test(skuName)) entry.spot = [retailPrice, meter];
      else entry.payg = [retailPrice, meter];
      found.set(key, entry);
    });
  }
  const rows: InstancePrice[] = [];
  const skipped: string[] = [];
  for (const [key, { payg, spot }] of [...found].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [region, size] = key.split('/');
    if ((inRegion && !inRegion(region)) || (isType && !isType(size))) continue;
    if (!payg) {
      skipped.push(`${size} in ${region}: a Spot price but no pay-as-you-go one`);
      continue;
    }
    const shape = AZURE_SIZES[size];
    const row: InstancePrice = {
      provider: 'azure',
      region,
      instanceType: size,
      family: shape.family,
      vcpus: shape.vcpus,
      memoryGiB: shape.memoryGiB,
      arch: shape.arch,
      ...(shape.accelerator ? { accelerator: shape.accelerator } : {}),
      onDemandUsdPerHour: tidy(payg[0]),
      source: { url: AZURE_RETAIL_URL, retrieved: o.retrieved, note: `pay-as-you-go Linux, meter ${payg[1]}` },
    };
    if (spot && spot[0] <= payg[0]) {
      const zones = AZURE_ZONED_REGIONS.has(region) ? [1, 2, 3].map((n) => `${region}-${n}`) : [region];
      row.spotUsdPerHour = Object.fromEntries(zones.map((z) => [z, tidy(spot[0])]));
      row.spotSource = {
        url: AZURE_RETAIL_URL,
        retrieved: o.retrieved,
        note: `Spot, meter ${spot[1]}; Azure prices Spot per region, so every zone carries the region figure`,
      };
    }
    rows.push(row);
  }
  return { rows, skipped };
}
