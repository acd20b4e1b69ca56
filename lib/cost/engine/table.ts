/** The "considered options" table, the choice marked, as SkyPilot's optimizer prints its candidates. */
import type { ConsideredOption, ConsideredOptions } from './types';

function cells(o: ConsideredOption, chosen: boolean): string[] {
  const inst =
    o.instances.max === 0
      ? '-'
      : o.instances.min === o.instances.max
        ? `${o.instances.max}`
        : `${o.instances.min}-${o.instances.max}`;
  const status = o.feasible ? (o.deployable ? 'ok' : (o.deployNote ?? 'ok')) : (o.reason ?? 'infeasible');
  return [
    chosen ? '✔' : '',
    o.strategy,
    o.provider,
    o.region,
    o.instanceType,
    inst,
    `$${o.monthlyCostUsd.toFixed(2)}`,
    o.p95Ms === null ? '-' : `${o.p95Ms.toFixed(1)} ms`,
    o.risk,
    status,
  ];
}

function pad(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) for (const [i, c] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, [...c].length);
  return rows.map((row) =>
    row
      .map((c, i) => (i === row.length - 1 ? c : c + ' '.repeat(widths[i] - [...c].length)))
      .join('  ')
      .trimEnd(),
  );
}

/** A plan (or its considered-options cut, as a deployment's status carries it) as the table. */
export function formatPlanTable(plan: ConsideredOptions, indent = ''): string[] {
  const header = ['', 'STRATEGY', 'PROVIDER', 'REGION', 'INSTANCE', 'N', '$/MONTH', 'P95', 'RISK', 'STATUS'];
  const rows = [header, ...plan.options.map((o) => cells(o, o.id === plan.chosen))];
  const c = plan.constraints;
  const head = [
    `Considered options (${plan.considered} sized; catalog ${plan.catalog.snapshotDate}, ${plan.catalog.contentHash.slice(0, 12)}):`,
    `  traffic ${plan.profile.description} (peak ${plan.profile.peakRps} rps, mean ${plan.profile.meanRps} rps, ${plan.profile.requestsPerMonth.toLocaleString('en-US')} requests/month); SLO p95 ${c.sloP95Ms} ms${c.budgetUsdPerMonth !== undefined ? `, budget $${c.budgetUsdPerMonth}/month` : ''}${c.usersIn ? `, users in ${c.usersIn}` : ''}`,
  ];
  const chosen = plan.options.find((o) => o.id === plan.chosen);
  const tail = chosen
    ? [
        `Chosen: ${chosen.id} at $${chosen.monthlyCostUsd.toFixed(2)}/month, p95 ${chosen.p95Ms} ms, ${(100 * chosen.withinSloShare).toFixed(2)}% within the SLO`,
        `  why: ${chosen.why}`,
        ...(chosen.estimates.length ? [`  rests on estimates: ${chosen.estimates.join('; ')}`] : []),
      ]
    : [`No choice: ${plan.error}`];
  return [...head, ...pad(rows), '', ...tail].map((l) => indent + l);
}
