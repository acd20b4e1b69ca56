/**
 * The cost engine's flags as `ferry plan` and `ferry deploy` both take them: the workload profile
 * (`--traffic`) and the constraints (`--slo-p95`, `--budget`, `--providers`, ...), parsed in this one place.
 */
import { readFileSync } from 'node:fs';
import {
  ConstraintError,
  DEFAULT_SLO_P95_MS,
  type PlanConstraints,
  parseBudget,
  parseLatency,
  parseList,
  parseProfile,
  type TargetKind,
  type WorkloadProfile,
} from '../../lib/cost/engine';
import { ProfileError } from '../../lib/cost/engine/workloadProfile';
import { seededUniform } from '../../lib/seededRandom';
import { FerryError } from '../sdk/errors';

export interface ConstraintFlags {
  sloP95?: string;
  budget?: string;
  providers?: string;
  regions?: string;
  arch?: string;
  gpu?: boolean;
  maxColdStart?: string;
  /** Commander's --no-spot: false when given. */
  spot?: boolean;
  usersIn?: string;
  target?: string;
}

const TARGETS: TargetKind[] = ['local', 'kubernetes', 'ec2'];
export const DEFAULT_SLO_P95 = `${DEFAULT_SLO_P95_MS}ms`;

/** The flags as the engine's constraints. */
export function constraintsFromFlags(f: ConstraintFlags): PlanConstraints {
  try {
    const arch = f.arch;
    if (arch !== undefined && arch !== 'arm64' && arch !== 'x86_64')
      throw new ConstraintError(`--arch must be arm64 or x86_64, got "${arch}"`);
    const target = f.target;
    if (target !== undefined && !TARGETS.includes(target as TargetKind))
      throw new ConstraintError(`--target must be one of ${TARGETS.join(', ')}, got "${target}"`);
    return {
      sloP95Ms: parseLatency(f.sloP95 ?? DEFAULT_SLO_P95),
      ...(f.budget !== undefined ? { budgetUsdPerMonth: parseBudget(f.budget) } : {}),
      ...(f.providers ? { providers: parseList(f.providers) } : {}),
      ...(f.regions ? { regions: parseList(f.regions) } : {}),
      ...(arch ? { arch } : {}),
      ...(f.gpu ? { gpu: true } : {}),
      ...(f.maxColdStart !== undefined ? { maxColdStartMs: parseLatency(f.maxColdStart) } : {}),
      ...(f.spot === false ? { noSpot: true } : {}),
      ...(f.usersIn ? { usersIn: f.usersIn } : {}),
      ...(target ? { targets: [target as TargetKind] } : {}),
    };
  } catch (err) {
    if (err instanceof ConstraintError) throw new FerryError(err.message);
    throw err;
  }
}

/** `--traffic` as a profile; a trace file is read here, a bursty shape's bursts placed with `--seed`. */
export function profileFromFlag(traffic: string, seed?: string): WorkloadProfile {
  try {
    return parseProfile(traffic, {
      readTrace: (file) => readFileSync(file, 'utf8'),
      random: seededUniform(seed ? Number(seed) : 1),
    });
  } catch (err) {
    if (err instanceof ProfileError || (err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FerryError(`--traffic: ${(err as Error).message}`);
    throw err;
  }
}
