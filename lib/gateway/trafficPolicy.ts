/**
 * Traffic splits between a deployment's revisions, decided per request: `x-ferry-variant: <revision>`
 * first (A/B by header), then header/value rules, then a weighted random pick by percent (canary).
 * A policy is replaced as a whole, so a change applies from the next request on and drops none.
 */
import type * as http from 'node:http';
import type { TrafficPolicy, TrafficRule } from '../targets/deploymentTarget';
import { SpecError } from './controlErrors';

/** The header a client sets to ask for a revision by name. */
export const VARIANT_HEADER = 'x-ferry-variant';

export type NormalizedTrafficPolicy = Required<TrafficPolicy>;

/** A policy checked against the revision names, with defaults filled in. Throws a SpecError (a 400). */
export function normalizeTrafficPolicy(input: unknown, revisionNames: readonly string[]): NormalizedTrafficPolicy {
  if (input === undefined || input === null) return { split: { [revisionNames[0]]: 100 }, rules: [] };
  if (typeof input !== 'object' || Array.isArray(input))
    throw new SpecError('"traffic" must be an object {split?, rules?}');
  const t = input as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (key !== 'split' && key !== 'rules')
      throw new SpecError(`"traffic" has an unknown field "${key}" (use "split" and "rules")`);
  }
  const known = new Set(revisionNames);
  const mustBeRevision = (name: string, where: string) => {
    if (!known.has(name))
      throw new SpecError(
        `${where} names revision "${name}", which this deployment does not have (it has: ${revisionNames.join(', ')})`,
      );
  };

  let split: Record<string, number> = { [revisionNames[0]]: 100 };
  if (t.split !== undefined) {
    if (typeof t.split !== 'object' || t.split === null || Array.isArray(t.split)) {
      throw new SpecError('"traffic.split" must map revision names to percentages, e.g. {"v1": 90, "v2": 10}');
    }
    split = {};
    let sum = 0;
    for (const [name, percent] of Object.entries(t.split as Record<string, unknown>)) {
      mustBeRevision(name, '"traffic.split"');
      if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) {
        throw new SpecError(`"traffic.split.${name}" must be a number from 0 to 100`);
      }
      if (percent > 0) split[name] = percent;
      sum += percent;
    }
    if (Math.abs(sum - 100) > 1e-6)
      throw new SpecError(`"traffic.split" percentages must add up to 100 (they add up to ${sum})`);
  }

  const rules: TrafficRule[] = [];
  if (t.rules !== undefined) {
    if (!Array.isArray(t.rules)) throw new SpecError('"traffic.rules" must be an array of {header, value, revision}');
    for (const [i, raw] of t.rules.entries()) {
      const r = raw as Partial<TrafficRule> | null;
      if (typeof r?.header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(r.header)) {
        throw new SpecError(`"traffic.rules[${i}].header" must be an HTTP header name`);
      }
      if (typeof r.value !== 'string') throw new SpecError(`"traffic.rules[${i}].value" must be a string`);
      if (typeof r.revision !== 'string') throw new SpecError(`"traffic.rules[${i}].revision" must be a revision name`);
      mustBeRevision(r.revision, `"traffic.rules[${i}]"`);
      rules.push({ header: r.header.toLowerCase(), value: r.value, revision: r.revision });
    }
  }
  return { split, rules };
}

/** Picks revisions for requests; built once per policy so the per-request work is a few comparisons. */
export class TrafficRouter {
  private readonly cumulative: Array<{ upTo: number; revision: string }> = [];
  private readonly known: Set<string>;

  constructor(
    readonly policy: NormalizedTrafficPolicy,
    revisionNames: readonly string[],
    private readonly random: () => number = Math.random,
  ) {
    this.known = new Set(revisionNames);
    let acc = 0;
    for (const [revision, percent] of Object.entries(policy.split)) {
      acc += percent;
      this.cumulative.push({ upTo: acc, revision });
    }
  }

  choose(headers: http.IncomingHttpHeaders): string {
    const variant = headers[VARIANT_HEADER];
    if (typeof variant === 'string' && this.known.has(variant)) return variant;
    for (const rule of this.policy.rules) {
      const value = headers[rule.header];
      if (value === rule.value || (Array.isArray(value) && value.includes(rule.value))) return rule.revision;
    }
    const point = this.random() * (this.cumulative[this.cumulative.length - 1]?.upTo ?? 100);
    for (const c of this.cumulative) if (point < c.upTo) return c.revision;
    return this.cumulative[this.cumulative.length - 1].revision;
  }

  percentOf(revision: string): number {
    return this.policy.split[revision] ?? 0;
  }
}
