/**
 * `ferry cost <deployment> [--json] [--hours N]`: the live cost the monitor measured (replica-seconds
 * held, priced at the resource the replicas run on), per 1,000 inferences, per day and projected per
 * month, with the idle part apart and the cold starts.
 */

import { Pool } from 'pg';
import { costReport } from '../../lib/analytics/costReport';
import { AnalyticsRepository } from '../../lib/db/analyticsRepository';
import type { FerryClient } from '../sdk';

export async function costCommand(ferry: FerryClient, ref: string, o: { json: boolean; hours: number }): Promise<void> {
  const status = await ferry.status(ref);
  const pool = new Pool({ connectionString: ferry.config.postgres.url, max: 1, connectionTimeoutMillis: 5000 });
  let report: Awaited<ReturnType<typeof costReport>>;
  try {
    report = await costReport(new AnalyticsRepository(pool), status.deploymentId, Date.now(), o.hours * 3_600_000);
  } finally {
    await pool.end();
  }
  if (o.json) {
    const { points, ...rest } = report;
    console.log(JSON.stringify({ ...rest, windowHours: o.hours }, null, 2));
    return;
  }
  if (report.intervals === 0) {
    console.log(
      `${status.deploymentId}: no cost measured in the last ${o.hours} h (the monitor prices each collection).`,
    );
    return;
  }
  const usd = (v: number | null) => (v === null ? '-' : v >= 1 ? `$${v.toFixed(2)}` : `$${v.toPrecision(3)}`);
  console.log(`${status.deploymentId}: cost from ${report.from} to ${report.to}`);
  console.log(`  Per 1,000 inferences: ${usd(report.per1kUsd)} (${report.requests} requests)`);
  console.log(
    `  Per day:              ${usd(report.perDayUsd)}   projected per month: ${usd(report.projectedMonthUsd)}`,
  );
  console.log(
    `  Allocated:            ${usd(report.allocatedUsd)}, of which idle ${usd(report.idleUsd)} (${report.allocatedUsd > 0 ? ((report.idleUsd / report.allocatedUsd) * 100).toFixed(0) : 0}%)`,
  );
  console.log(`  Replica-seconds:      ${report.replicaSeconds.toFixed(0)}`);
  for (const [rev, r] of Object.entries(report.byRevision))
    console.log(`    ${rev.padEnd(18)} ${r.replicaSeconds.toFixed(0).padStart(8)} s  ${usd(r.allocatedUsd)}`);
  console.log(
    `  Cold starts:          ${report.coldStarts}${report.coldStartMeanMs !== null ? `, mean ${report.coldStartMeanMs.toFixed(0)} ms, longest ${report.coldStartMaxMs?.toFixed(0)} ms` : ''}`,
  );
  console.log(`  Priced at:            ${report.priceSource} (${usd(report.usdPerHour)}/h)`);
}
