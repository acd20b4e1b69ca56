/**
 * Constraints as the CLI and the pipeline give them (`--slo-p95 50ms`, `--budget 200/month`, `--regions
 * us-*,eu-west-1`, ...), parsed, and the catalog rows they allow.
 */
import type { InstancePrice, PriceCatalog, ServerlessPrice } from '../catalog/types';
import type { PlanConstraints, PlanOption } from './types';

/** The p95 goal when none is given (`ferry plan`, the deploy stage). */
export const DEFAULT_SLO_P95_MS = 100;

export class ConstraintError extends Error {
  override name = 'ConstraintError';
}

/** "50ms", "0.2s", "2s", plain "50" (ms) → milliseconds. */
export function parseLatency(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(raw.trim());
  if (!m) throw new ConstraintError(`"${raw}" is not a latency (examples: 50ms, 2s)`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/** "200/month", "$200/mo", "200" → USD per month; "5/day" and "0.3/hour" are scaled to a month (730 h). */
export function parseBudget(raw: string): number {
  const m = /^\$?(\d+(?:\.\d+)?)\s*(?:\/\s*(month|mo|day|hour|h))?$/.exec(raw.trim());
  if (!m) throw new ConstraintError(`"${raw}" is not a budget (examples: 200/month, 5/day)`);
  const per = m[2] ?? 'month';
  return Number(m[1]) * (per === 'day' ? 730 / 24 : per === 'hour' || per === 'h' ? 730 : 1);
}

export function parseList(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** A region glob (`us-*`, `europe-west?`) as a whole-name match. */
export function regionMatches(region: string, patterns: string[] | undefined): boolean {
  if (!patterns) return true;
  return patterns.some((p) => {
    const re = new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    return re.test(region);
  });
}

function providerAllowed(provider: string, c: PlanConstraints): boolean {
  return !c.providers || c.providers.includes(provider);
}

/** Instance rows the constraints allow. GPU types are considered only with --gpu, and then only they. */
export function allowedInstances(catalog: PriceCatalog, c: PlanConstraints): InstancePrice[] {
  return catalog.instances.filter(
    (i) =>
      providerAllowed(i.provider, c) &&
      regionMatches(i.region, c.regions) &&
      (!c.arch || i.arch === c.arch) &&
      (c.gpu ? i.accelerator !== undefined : i.accelerator === undefined),
  );
}

export function allowedServerless(catalog: PriceCatalog, c: PlanConstraints): ServerlessPrice[] {
  return catalog.serverless.filter(
    (s) => providerAllowed(s.provider, c) && regionMatches(s.region, c.regions) && (!c.arch || s.arch === c.arch),
  );
}

/**
 * Constraints an option outside the catalog (this machine, the user's cluster, a device) breaks: a GPU
 * asked for, another architecture. Returned as the infeasible reason.
 */
export function offCatalogProblem(
  arch: string,
  c: PlanConstraints,
): Pick<PlanOption, 'reason' | 'reasonKind'> | undefined {
  if (c.gpu) return { reasonKind: 'needs-gpu', reason: 'needs a GPU (--gpu): this option has none' };
  if (c.arch && c.arch !== arch) return { reasonKind: 'no-capacity', reason: `is ${arch}, not ${c.arch} (--arch)` };
  return undefined;
}
