/** `ferry recommendations` and `ferry apply`: through Ferry's HTTP API (lib/analytics/recommendations.ts). */
import type { Recommendation } from '../../lib/analytics/recommendations';
import type { FerryApiClient } from '../http/ferryApiClient';
import { textTable } from './textTable';

const usd = (v: number) => (v >= 1 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`);

export async function recommendationsCommand(
  api: FerryApiClient,
  ref: string | undefined,
  json: boolean,
): Promise<void> {
  // Every deployment that serves now (an undeployed or failed run has nothing to recommend).
  const refs = ref ? [ref] : (await api.list()).filter((d) => d.stage === 'live').map((d) => String(d.deploymentId));
  const all: Recommendation[] = [];
  for (const r of refs) all.push(...(await api.recommendations(r)).recommendations);
  all.sort((a, b) => b.monthlySavingUsd - a.monthlySavingUsd);
  if (json) {
    console.log(JSON.stringify({ recommendations: all }, null, 2));
    return;
  }
  if (all.length === 0) {
    console.log(ref ? `no recommendation for ${ref}` : 'no recommendation for any deployment');
    return;
  }
  const rows = [
    ['id', 'saving/month', 'what', 'evidence'],
    ...all.map((r) => [r.id, usd(r.monthlySavingUsd), r.title, r.evidence]),
  ];
  for (const line of textTable(rows)) console.log(line);
  console.log('\napply one with: ferry apply <id>');
}

export async function applyCommand(api: FerryApiClient, id: string, json: boolean): Promise<void> {
  const { applied } = await api.applyRecommendation(id);
  if (json) console.log(JSON.stringify(applied, null, 2));
  else console.log(`applied ${applied.id}: ${applied.title} (expected saving ${usd(applied.monthlySavingUsd)}/month)`);
}
