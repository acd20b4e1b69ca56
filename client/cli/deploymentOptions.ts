/** A deployment's considered deployment options as `ferry status` and `ferry deploy` print them. */
import { approvableOptions } from '../../lib/cost/deployChoice';
import { formatPlanTable } from '../../lib/cost/engine/table';
import type { DeploymentStatus } from '../../workflows/types';

/**
 * The table of the plan taken (or, while waiting, of the default plan), the choice marked; in review
 * mode, what else can be approved.
 */
export function printDeploymentOptions(status: DeploymentStatus): void {
  const tables = status.deploymentOptions;
  if (!tables) return;
  const plan = status.deploymentDecision?.plan ?? status.chosenPlan?.plan ?? status.defaultPlan;
  const table = plan ? tables[plan] : undefined;
  if (!table) return;
  const decided = status.deploymentDecision;
  // The table marks the engine's choice; an approved option replaces it.
  const shown = decided ? { ...table, chosen: decided.option } : table;
  console.log(`  Deployment options for plan ${plan}:`);
  for (const line of formatPlanTable(shown, '    ')) console.log(line);
  if (status.phase === 'awaiting-approval') {
    for (const [id, t] of Object.entries(tables)) {
      const ids = approvableOptions(t).map((o) => o.id);
      console.log(
        `    plan ${id}: ${ids.length ? `${ids.length} option(s) can be approved, cheapest ${ids[0]}` : `none can be deployed (${t.error})`}`,
      );
    }
  }
}

/** One line: the option deployed, where, and what the engine expects of it. */
export function decisionLine(status: DeploymentStatus): string | undefined {
  const d = status.deploymentDecision;
  if (!d) return undefined;
  return `${d.option} on ${d.target}: ~$${d.monthlyCostUsd.toFixed(2)}/month, expected p95 ${d.p95Ms ?? '-'} ms (${d.source}${d.approvedBy ? ` by ${d.approvedBy}` : ''})`;
}
