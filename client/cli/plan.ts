/**
 * `ferry plan model.onnx|report.json|<deployment> --traffic ... [constraints]`: the cost engine alone.
 * A model file is measured first the way the optimize stage measures its original (the same engine, in a
 * child process, no techniques); a `ferry optimize` report.json, or a deployment's measured table, is used
 * as it is (the candidate it chose). Prints the considered-options table, or `--json`.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FerryConfig } from '../../lib/config';
import { shippedCatalog } from '../../lib/cost/catalog/load';
import { configuredTargets } from '../../lib/cost/configuredTargets';
import {
  ConstraintError,
  estimatedClusterNode,
  formatPlanTable,
  type ModelMeasurements,
  measurementsFromCandidate,
  type PlanConstraints,
  type PlanInput,
  parseBudget,
  parseCalibration,
  parseLatency,
  parseList,
  parseProfile,
  planDeployment,
  type TargetKind,
} from '../../lib/cost/engine';
import { ProfileError } from '../../lib/cost/engine/workloadProfile';
import { seededUniform } from '../../lib/seededRandom';
import type { DeploymentStatus, OptimizationTable, TensorSpec } from '../../workflows/types';
import { FerryError } from '../sdk/errors';

export interface PlanFlags {
  traffic: string;
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
  localCost?: string;
  nodeCost?: string;
  nodeVcpus?: string;
  nodeMemory?: string;
  edge?: string;
  speed?: string;
  seed?: string;
  measureMs?: string;
  deployableOnly?: boolean;
  all?: boolean;
  json?: boolean;
}

const TARGETS: TargetKind[] = ['local', 'kubernetes', 'ec2'];
export const DEFAULT_SLO_P95 = '100ms';

/** The flags as the engine's constraints (shared with `ferry deploy`'s planning flags). */
export function constraintsFromFlags(f: Omit<PlanFlags, 'traffic'>): PlanConstraints {
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

function money(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw.replace(/^\$/, '').replace(/\/h(our)?$/, ''));
  if (!Number.isFinite(n) || n < 0) throw new FerryError(`${flag} must be USD per hour (e.g. 0.05), got "${raw}"`);
  return n;
}

/** The measured row of a `ferry optimize` report or a deployment's table: its best (or chosen) candidate. */
export function measurementsFromTable(
  table: OptimizationTable,
  candidate: string,
  source: string,
  inputs?: TensorSpec[],
): ModelMeasurements {
  const row = table.candidates.find((c) => c.id === candidate)?.row;
  if (!row) throw new FerryError(`${source}: candidate "${candidate}" has no measurement`);
  return measurementsFromCandidate(row, { source: `${source}, candidate ${candidate}`, inputs });
}

async function measureModelFile(
  file: string,
  measureMs: number | undefined,
  quiet: boolean,
): Promise<ModelMeasurements> {
  const { optimizeModelFile } = await import('../sdk/optimize');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-plan-'));
  try {
    if (!quiet) process.stderr.write(`measuring ${path.basename(file)} as the optimize stage does...\n`);
    const result = await optimizeModelFile(file, {
      workDir: dir,
      techniques: [],
      ...(measureMs ? { measure: { measureMs } } : {}),
    });
    const t = result.table;
    return measurementsFromTable(t, t.best, `measured here (${path.basename(file)})`, result.analysis.inputs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How a deployment's status is read (the CLI's connected client). */
export type StatusReader = (ref: string) => Promise<DeploymentStatus>;

async function measurementsFor(ref: string, f: PlanFlags, readStatus: StatusReader): Promise<ModelMeasurements> {
  if (ref.endsWith('.json')) {
    const report = JSON.parse(
      await readFile(ref, 'utf8').catch(() => {
        throw new FerryError(`report ${ref} cannot be read`);
      }),
    ) as { table?: OptimizationTable };
    if (!report.table?.candidates) throw new FerryError(`${ref} is not a \`ferry optimize\` report (no "table")`);
    return measurementsFromTable(report.table, report.table.best, `ferry optimize report ${path.basename(ref)}`);
  }
  if (ref.endsWith('.onnx'))
    return measureModelFile(ref, f.measureMs ? Number(f.measureMs) : undefined, f.json === true);
  // A deployment: the optimize stage's table of its run, the candidate that was chosen.
  const status = await readStatus(ref);
  if (!status.optimization)
    throw new FerryError(`deployment ${ref} has no optimization table yet (at: ${status.phase})`);
  const chosen = status.chosenPlan?.plan ?? status.optimization.best;
  return measurementsFromTable(
    status.optimization,
    chosen,
    `deployment ${status.deploymentId}`,
    status.summary?.inputs,
  );
}

export async function planCommand(
  ref: string,
  f: PlanFlags,
  config: FerryConfig,
  readStatus: StatusReader,
): Promise<void> {
  const constraints = constraintsFromFlags(f);
  let profile: PlanInput['profile'];
  try {
    profile = parseProfile(f.traffic, {
      readTrace: (file) => readFileSync(file, 'utf8'),
      random: seededUniform(f.seed ? Number(f.seed) : 1),
    });
  } catch (err) {
    if (err instanceof ProfileError || (err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FerryError(`--traffic: ${(err as Error).message}`);
    throw err;
  }
  const catalog = shippedCatalog();
  const deployableTargets = configuredTargets(config);
  const localCost = money('--local-cost', f.localCost) ?? config.cost.userLocalCostPerHour;
  const nodeCost = money('--node-cost', f.nodeCost);
  const kubernetesNode =
    nodeCost !== undefined
      ? {
          node: {
            usdPerHour: nodeCost,
            vcpus: f.nodeVcpus ? Number(f.nodeVcpus) : 2,
            memoryGiB: f.nodeMemory ? Number(f.nodeMemory) : 8,
            arch: 'x86_64' as const,
          },
          priceBasis: '--node-cost',
        }
      : deployableTargets.includes('kubernetes')
        ? estimatedClusterNode(catalog)
        : undefined;
  const model = await measurementsFor(ref, f, readStatus);
  let calibration: Record<string, number> | undefined;
  try {
    calibration = f.speed ? parseCalibration(f.speed) : undefined;
  } catch (err) {
    throw new FerryError(`--speed: ${(err as Error).message}`);
  }
  const plan = planDeployment({
    model,
    profile,
    constraints,
    catalog,
    local: {
      vcpus: os.availableParallelism(),
      memoryGiB: Math.floor(os.totalmem() / 2 ** 30),
      arch: process.arch === 'arm64' ? 'arm64' : 'x86_64',
      ...(localCost !== undefined ? { usdPerHour: localCost } : {}),
    },
    ...(kubernetesNode ? { kubernetesNode } : {}),
    ...(f.edge ? { edgeDevice: f.edge } : {}),
    ...(calibration ? { calibration } : {}),
    deployableTargets,
    deployableOnly: f.deployableOnly === true,
    allOptions: f.all === true,
  });
  if (f.json) {
    console.log(JSON.stringify(plan, null, 2));
  } else {
    console.log(formatPlanTable(plan).join('\n'));
    console.log('\nAssumptions:');
    for (const a of plan.assumptions) console.log(`  - ${a}`);
  }
  if (!plan.chosen) {
    if (!f.json) console.error(`\nerror: ${plan.error}`);
    process.exitCode = 1;
  }
}
