/**
 * The deployment option a run takes, and why an approved one is refused. Pure and free of Node imports:
 * the deploy workflow's Update validator runs it in the workflow sandbox.
 */
import type { ConsideredOption, ConsideredOptions } from './engine/types';

/** Options that may be approved: feasible and deployable here, cheapest first (the table's order). */
export function approvableOptions(table: ConsideredOptions): ConsideredOption[] {
  return table.options.filter((o) => o.feasible && o.deployable);
}

function listed(table: ConsideredOptions): string {
  const ids = approvableOptions(table).map((o) => o.id);
  return ids.length ? `choose one of: ${ids.join(', ')}` : `no option can be deployed (${table.error ?? 'none fits'})`;
}

/** Why `optionId` cannot be approved with `plan`, or undefined when it can. */
export function optionRefusal(
  table: ConsideredOptions | undefined,
  plan: string,
  optionId: string,
): string | undefined {
  if (!table) return `plan "${plan}" has no deployment options`;
  const o = table.options.find((x) => x.id === optionId);
  if (!o) return `unknown deployment option "${optionId}" for plan "${plan}"; ${listed(table)}`;
  if (!o.feasible)
    return `deployment option "${optionId}" is ruled out for plan "${plan}": ${o.reason}; ${listed(table)}`;
  if (!o.deployable)
    return `deployment option "${optionId}" cannot be deployed from here (${o.deployNote ?? 'not configured'}); ${listed(table)}`;
  return undefined;
}

/** Why `plan` cannot be deployed at all (no option fits), or undefined: the plan's own error, which names the cheapest option meeting the SLO. */
export function noOptionProblem(table: ConsideredOptions | undefined, plan: string): string | undefined {
  if (!table) return `plan "${plan}" has no deployment options`;
  return table.chosen ? undefined : (table.error ?? `no deployment option fits plan "${plan}"`);
}

/** The option a run deploys: the approved one, else the table's choice (the cheapest deployable that meets the SLO and budget). */
export function optionToDeploy(table: ConsideredOptions, approved?: string): ConsideredOption | undefined {
  const id = approved ?? table.chosen;
  return table.options.find((o) => o.id === id);
}
