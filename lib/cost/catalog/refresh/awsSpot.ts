/**
 * AWS spot figures: the EC2 DescribeSpotPriceHistory answer (`aws ec2 describe-spot-price-history
 * --output json`: `SpotPriceHistory[]` of AvailabilityZone, InstanceType, ProductDescription, SpotPrice,
 * Timestamp), of which the newest Linux price per type and zone is kept; and the Spot Instance Advisor's
 * data file (`ranges[]` of index and label, `spot_advisor[region].Linux[type].r` a range index), which
 * gives the interruption band.
 */
import type { InstancePrice, InterruptionBand } from '../types';
import { INTERRUPTION_BANDS } from '../validate';
import { isObj, priceOf, RefreshError, type RefreshOptions, tidy } from './input';

export const AWS_SPOT_HISTORY_URL =
  'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html';
export const AWS_SPOT_ADVISOR_URL = 'https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json';

export interface SpotPrices {
  /** `${region}/${type}` → zone → $/h */
  byType: Map<string, Record<string, number>>;
  /** The newest timestamp among the prices kept. */
  newest: string;
}

/** `us-east-1a` → `us-east-1`; a Local Zone `us-east-1-bos-1a` → `us-east-1`. */
export function regionOfZone(zone: string): string | undefined {
  return /^([a-z]+-[a-z]+-\d+)/.exec(zone)?.[1];
}

export function parseAwsSpotHistory(contents: { file: string; content: unknown }[]): SpotPrices {
  const latest = new Map<string, { at: string; price: number }>();
  for (const { file, content } of contents) {
    if (!isObj(content) || !Array.isArray(content.SpotPriceHistory))
      throw new RefreshError(file, 'not a DescribeSpotPriceHistory answer (it needs "SpotPriceHistory": [...])');
    content.SpotPriceHistory.forEach((e, i) => {
      if (!isObj(e)) throw new RefreshError(file, `SpotPriceHistory[${i}] is not an object`);
      const { AvailabilityZone: zone, InstanceType: type, ProductDescription: product, Timestamp: at } = e;
      const price = priceOf(e.SpotPrice);
      if (typeof zone !== 'string' || typeof type !== 'string' || typeof at !== 'string' || !(price > 0))
        throw new RefreshError(
          file,
          `SpotPriceHistory[${i}] lacks AvailabilityZone, InstanceType, SpotPrice or Timestamp`,
        );
      if (typeof product === 'string' && !product.startsWith('Linux/UNIX')) return;
      const key = `${type} ${zone}`;
      const seen = latest.get(key);
      if (!seen || Date.parse(at) > Date.parse(seen.at)) latest.set(key, { at, price });
    });
  }
  const byType = new Map<string, Record<string, number>>();
  let newest = '';
  for (const [key, { at, price }] of latest) {
    const [type, zone] = key.split(' ');
    const region = regionOfZone(zone);
    if (!region) continue;
    const k = `${region}/${type}`;
    byType.set(k, { ...byType.get(k), [zone]: tidy(price) });
    if (at > newest) newest = at;
  }
  return { byType, newest };
}

/** `${region}/${type}` → band, from the advisor's Linux figures. */
export function parseSpotAdvisor(content: unknown, file: string): Map<string, InterruptionBand> {
  if (!isObj(content) || !Array.isArray(content.ranges) || !isObj(content.spot_advisor))
    throw new RefreshError(file, 'not the Spot Instance Advisor data file (it needs "ranges" and "spot_advisor")');
  const labels = new Map<number, InterruptionBand>();
  for (const r of content.ranges) {
    if (!isObj(r) || typeof r.index !== 'number') continue;
    const label = String(r.label).replace(/\s/g, '') as InterruptionBand;
    if (!INTERRUPTION_BANDS.includes(label))
      throw new RefreshError(
        file,
        `range label ${JSON.stringify(r.label)} is not one of ${INTERRUPTION_BANDS.join(', ')}`,
      );
    labels.set(r.index, label);
  }
  const out = new Map<string, InterruptionBand>();
  for (const [region, byOs] of Object.entries(content.spot_advisor)) {
    const linux = isObj(byOs) ? byOs.Linux : undefined;
    if (!isObj(linux)) continue;
    for (const [type, stats] of Object.entries(linux)) {
      const band = isObj(stats) && typeof stats.r === 'number' ? labels.get(stats.r) : undefined;
      if (band) out.set(`${region}/${type}`, band);
    }
  }
  return out;
}

/**
 * The spot prices and bands applied to AWS rows (refreshed or kept): a row with history gets its zones'
 * prices (a zone above the on-demand price, which AWS does not charge, is left out) and the history as its
 * spot source; a band is set only where the row has spot prices.
 */
export function applyAwsSpot(
  rows: InstancePrice[],
  spot: SpotPrices | undefined,
  bands: Map<string, InterruptionBand> | undefined,
  o: RefreshOptions,
  skipped: string[],
): InstancePrice[] {
  return rows.map((row) => {
    if (row.provider !== 'aws') return row;
    const key = `${row.region}/${row.instanceType}`;
    let next = row;
    const zones = spot?.byType.get(key);
    if (zones) {
      const kept = Object.fromEntries(Object.entries(zones).filter(([, p]) => p <= row.onDemandUsdPerHour));
      for (const z of Object.keys(zones))
        if (!(z in kept)) skipped.push(`${row.instanceType} spot in ${z}: above the on-demand price, left out`);
      if (Object.keys(kept).length) {
        next = {
          ...row,
          spotUsdPerHour: kept,
          spotSource: {
            url: AWS_SPOT_HISTORY_URL,
            retrieved: o.retrieved,
            note: `the newest Linux/UNIX price per zone in the spot price history given (newest ${spot!.newest})`,
          },
        };
        delete next.interruption;
      }
    }
    const band = bands?.get(key);
    if (band && next.spotUsdPerHour) {
      next = { ...next, interruption: band };
      if (next.spotSource && !next.spotSource.note?.includes('Spot Instance Advisor'))
        next.spotSource = {
          ...next.spotSource,
          note: `${next.spotSource.note}; interruption band from the Spot Instance Advisor data (${AWS_SPOT_ADVISOR_URL})`,
        };
    }
    return next;
  });
}
