/**
 * What every strategy needs to size and price an option: the model, the per-minute rates, the SLO less the
 * users' round trip to the option's region, and how to label estimates. Built once per plan (plan.ts).
 */
import type { Calibration } from '../cpuSpeed';
import { roundTrip } from '../networkLatency';
import type { ModelMeasurements, PlanConstraints, PlanOption, TargetKind } from '../types';
import { monthScale, type WorkloadProfile } from '../workloadProfile';

export interface StrategyContext {
  model: ModelMeasurements;
  profile: WorkloadProfile;
  constraints: PlanConstraints;
  calibration: Calibration;
  /** Billed hours of a month per hour of the profile. */
  monthScale: number;
}

export function strategyContext(
  model: ModelMeasurements,
  profile: WorkloadProfile,
  constraints: PlanConstraints,
  calibration: Calibration,
): StrategyContext {
  return { model, profile, constraints, calibration, monthScale: monthScale(profile) };
}

/** The users' round trip to a region (0 without --users-in, or for a region that is not a cloud's). */
export function rttTo(ctx: StrategyContext, region: string | undefined): number {
  if (!ctx.constraints.usersIn || !region) return 0;
  return roundTrip(ctx.constraints.usersIn, region).ms;
}

export function optionId(strategy: string, provider: string, region: string, instanceType: string): string {
  return `${strategy}:${provider}:${region}:${instanceType}`;
}

/** Fields every option shares, for an option that cannot serve at all (memory, GPU, limits). */
export function infeasibleOption(
  base: Pick<PlanOption, 'id' | 'strategy' | 'provider' | 'region' | 'instanceType'> & { target?: TargetKind },
  kind: PlanOption['reasonKind'],
  reason: string,
  monthlyCostUsd = 0,
): PlanOption {
  return {
    ...base,
    monthlyCostUsd,
    p95Ms: null,
    withinSloShare: 0,
    feasible: false,
    reason,
    reasonKind: kind,
    risk: 'high',
    why: reason,
    instances: { min: 0, max: 0, mean: 0 },
    deployable: false,
    estimates: [],
  };
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export function describeInstances(hours: number[]): { min: number; max: number; mean: number } {
  return {
    min: Math.min(...hours),
    max: Math.max(...hours),
    mean: Math.round((100 * hours.reduce((a, b) => a + b, 0)) / hours.length) / 100,
  };
}

/** A latency for a message: "23 ms", or "unbounded" for a pool that cannot keep up. */
export function fmtMs(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? 'unbounded (overloaded)' : `${ms.toFixed(0)} ms`;
}
