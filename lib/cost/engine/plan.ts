/**
 * The cost engine: every strategy × allowed provider, region and instance type sized at the SLO and priced
 * for a month of the profile, ranked, and the cheapest feasible one chosen.
 *
 *   const plan = planDeployment({ model, profile, constraints, catalog, deployableTargets: ['local'] });
 *
 * Pure and deterministic: the same input gives the same plan (no clock, no randomness; a bursty profile's
 * randomness was spent when it was parsed).
 */
import { allowedInstances, allowedServerless, offCatalogProblem, regionMatches } from './constraints';
import { CPU_SPEED_FACTORS } from './cpuSpeed';
import { REPLICA_BOOT_MS } from './measurements';
import { strategyContext } from './strategies/context';
import { edgeOption } from './strategies/edge';
import { clusterOption, managedClusterOption } from './strategies/kubernetes';
import { localOption } from './strategies/local';
import { serverlessOption } from './strategies/serverless';
import { REPLACEMENT_MS, spotOption } from './strategies/spot';
import { onDemandOption } from './strategies/vm';
import type { DeploymentPlan, PlanInput, PlanOption } from './types';
import { meanRps, peakRps, requestsPerMonth } from './workloadProfile';

export class PlanError extends Error {
  override name = 'PlanError';
}

export function planDeployment(input: PlanInput): DeploymentPlan {
  const c = input.constraints;
  if (!(c.sloP95Ms > 0)) throw new PlanError('the p95 SLO must be above 0 ms');
  const ctx = strategyContext(input.model, input.profile, c, input.calibration ?? {});
  const allows = (provider: string) => !c.providers || c.providers.includes(provider);

  const raw: PlanOption[] = [];
  const offCatalog = (o: PlanOption | undefined, arch: string) => {
    if (!o) return;
    const problem = offCatalogProblem(arch, c);
    raw.push(problem ? { ...o, feasible: false, ...problem } : o);
  };
  if (input.local && allows('local')) offCatalog(localOption(ctx, input.local), input.local.arch);
  if (input.kubernetesNode && allows('cluster'))
    offCatalog(
      clusterOption(ctx, input.kubernetesNode.node, input.kubernetesNode.priceBasis),
      input.kubernetesNode.node.arch,
    );
  if (input.edgeDevice && allows('edge')) offCatalog(edgeOption(ctx, input.edgeDevice), 'arm64');
  for (const inst of allowedInstances(input.catalog, c)) {
    raw.push(onDemandOption(ctx, inst));
    if (!c.noSpot) {
      const spot = spotOption(ctx, inst);
      if (spot) raw.push(spot);
    }
    raw.push(managedClusterOption(ctx, inst));
  }
  if (!c.gpu) for (const s of allowedServerless(input.catalog, c)) raw.push(serverlessOption(ctx, s));

  const options = raw
    .filter((o) => !c.targets || (o.target !== undefined && c.targets.includes(o.target)))
    .map((o) => finish(o, input));

  const meetsSlo = options.filter((o) => o.feasible).sort(byCost);
  // The budget last: an option over it still met everything else (named when nothing fits the budget).
  const budget = c.budgetUsdPerMonth;
  for (const o of options) {
    if (o.feasible && budget !== undefined && o.monthlyCostUsd > budget) {
      o.feasible = false;
      o.reasonKind = 'over-budget';
      o.reason = `over budget: $${o.monthlyCostUsd.toFixed(2)}/month > $${budget}/month`;
    }
  }
  const ranked = rank(options);
  const pool = ranked.filter((o) => o.feasible && (!input.deployableOnly || o.deployable));
  const plan: DeploymentPlan = {
    chosen: pool[0]?.id,
    options: input.allOptions ? ranked : keepForTable(ranked, pool[0]?.id),
    cheapestMeetingSlo: meetsSlo[0]?.id,
    considered: ranked.length,
    profile: {
      kind: input.profile.kind,
      description: input.profile.description,
      peakRps: peakRps(input.profile),
      meanRps: round(meanRps(input.profile), 3),
      requestsPerMonth: Math.round(requestsPerMonth(input.profile)),
    },
    constraints: c,
    catalog: { snapshotDate: input.catalog.snapshotDate, contentHash: input.catalog.contentHash },
    model: input.model,
    assumptions: assumptions(input),
  };
  if (!plan.chosen) plan.error = noChoiceMessage(ranked, meetsSlo, input);
  return plan;
}

/** The chosen option, or a PlanError with the plan's message (the budget error names the cheapest SLO-meeting option). */
export function requireChoice(plan: DeploymentPlan): PlanOption {
  const chosen = plan.options.find((o) => o.id === plan.chosen);
  if (!chosen) throw new PlanError(plan.error ?? 'no option chosen');
  return chosen;
}

function finish(o: PlanOption, input: PlanInput): PlanOption {
  const deployable = o.target !== undefined && input.deployableTargets.includes(o.target);
  // No undefined fields: the plan is JSON (a payload, a Postgres row) and must read back equal.
  const defined = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as PlanOption;
  return {
    ...defined,
    monthlyCostUsd: round(o.monthlyCostUsd, 2),
    p95Ms: o.p95Ms === null || !Number.isFinite(o.p95Ms) ? null : round(o.p95Ms, 1),
    withinSloShare: round(o.withinSloShare, 5),
    deployable,
    ...(deployable ? {} : { deployNote: 'not configured' }),
  };
}

function byCost(a: PlanOption, b: PlanOption): number {
  return (
    a.monthlyCostUsd - b.monthlyCostUsd ||
    (a.p95Ms ?? Number.POSITIVE_INFINITY) - (b.p95Ms ?? Number.POSITIVE_INFINITY) ||
    a.id.localeCompare(b.id)
  );
}

function rank(options: PlanOption[]): PlanOption[] {
  return [...options.filter((o) => o.feasible).sort(byCost), ...options.filter((o) => !o.feasible).sort(byCost)];
}

/**
 * The table: per strategy, provider and region, the cheapest feasible option, the cheapest deployable one,
 * and the infeasible ones cheaper than it (at most two: they say why the cheaper choice is out); for a group
 * with nothing feasible, its cheapest infeasible option. The chosen one is always kept.
 */
function keepForTable(ranked: PlanOption[], chosen: string | undefined): PlanOption[] {
  const groups = new Map<string, PlanOption[]>();
  for (const o of ranked) {
    const key = `${o.strategy}|${o.provider}|${o.region}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  const keep = new Set<string>();
  if (chosen) keep.add(chosen);
  for (const group of groups.values()) {
    const feasible = group.filter((o) => o.feasible).sort(byCost);
    const infeasible = group.filter((o) => !o.feasible).sort(byCost);
    const best = feasible[0];
    if (best) {
      keep.add(best.id);
      const deployable = feasible.find((o) => o.deployable);
      if (deployable) keep.add(deployable.id);
      for (const o of infeasible.filter((x) => x.monthlyCostUsd < best.monthlyCostUsd).slice(0, 2)) keep.add(o.id);
    } else if (infeasible[0]) {
      keep.add(infeasible[0].id);
    }
  }
  return ranked.filter((o) => keep.has(o.id));
}

function noChoiceMessage(ranked: PlanOption[], meetsSlo: PlanOption[], input: PlanInput): string {
  const c = input.constraints;
  const slo = `the p95 SLO of ${c.sloP95Ms} ms`;
  if (ranked.length === 0) {
    const where = [
      c.providers && `providers ${c.providers.join(',')}`,
      c.regions && `regions ${c.regions.join(',')}`,
      c.arch && `arch ${c.arch}`,
      c.gpu && 'a GPU',
      c.targets && `target ${c.targets.join(',')}`,
    ].filter(Boolean);
    return `no option to consider${where.length ? ` with ${where.join(', ')}` : ''}: the catalog has none and no local cost, cluster or device was given`;
  }
  if (meetsSlo.length === 0) {
    const closest = [...ranked].filter((o) => o.p95Ms !== null).sort((a, b) => a.p95Ms! - b.p95Ms!)[0];
    return `no option meets ${slo}${closest ? `; the closest is ${closest.id} with p95 ${closest.p95Ms} ms ($${closest.monthlyCostUsd}/month)` : ''}`;
  }
  const cheapest = meetsSlo[0];
  const budget = c.budgetUsdPerMonth;
  const withinBudget = meetsSlo.filter((o) => budget === undefined || o.monthlyCostUsd <= budget);
  if (withinBudget.length === 0)
    return `no option fits the budget of $${budget}/month: the cheapest that meets ${slo} is ${cheapest.id} at $${cheapest.monthlyCostUsd.toFixed(2)}/month`;
  const first = withinBudget[0];
  return `no option deployable here meets ${slo}${budget !== undefined ? ' and the budget' : ''}: the cheapest that does is ${first.id} at $${first.monthlyCostUsd.toFixed(2)}/month (${first.deployNote ?? 'not configured'}); configure its target or drop --deployable-only`;
}

function assumptions(input: PlanInput): string[] {
  const m = input.model;
  const families = Object.values(CPU_SPEED_FACTORS).reduce((a, t) => a + Object.keys(t).length, 0);
  const out = [
    `service times: ${m.source}, batch 1 with ${m.threads} thread(s): p50 ${m.batch1.p50Ms.toFixed(2)} ms, p95 ${m.batch1.p95Ms.toFixed(2)} ms; dynamic batching not counted (conservative)`,
    'queueing: Poisson arrivals within each minute, M/M/c (Erlang C) waits, service time a shifted exponential fitted to the measured p50 and p95',
    `CPU speed: per-family factors against the measuring machine (lib/cost/engine/cpuSpeed.ts, ${families} families, estimates unless calibrated with --speed)`,
    `cold start: ${m.coldStartMeasured ? 'measured' : `estimated as ${REPLICA_BOOT_MS} ms replica start + ${m.loadMs.toFixed(0)} ms model load`} (${m.coldStartMs.toFixed(0)} ms), plus the platform's own start for serverless`,
    'fleets scale hourly to the busiest minute of the hour (at least one instance); serverless scales per request',
    `spot: interruption band's upper bound per month, ${REPLACEMENT_MS / 1000} s from the notice to a serving replacement, one on-demand instance as the base`,
    'a month is 730 hours; free tiers are not counted',
  ];
  if (input.constraints.usersIn)
    out.push(
      `round trips from ${input.constraints.usersIn}: estimated by geographic area (lib/cost/engine/networkLatency.ts)`,
    );
  if (
    input.constraints.regions &&
    !input.catalog.instances.some((i) => regionMatches(i.region, input.constraints.regions))
  )
    out.push(`no catalog region matches ${input.constraints.regions.join(',')}`);
  return out;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
