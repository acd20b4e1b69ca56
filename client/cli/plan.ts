/**
 * `ferry plan model.onnx|report.json|<deployment> --traffic ... [constraints]`: the cost engine alone.
 * A model file is measured first the way the optimize stage measures its original (the same engine, in a
 * child process, no techniques); a `ferry optimize` report.json, or a deployment's measured table, is used
 * as it is (the candidate it chose). Prints the considered-options table, or `--json`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FerryConfig } from '../../lib/config';
import { shippedCatalog } from '../../lib/cost/catalog/load';
import { configuredTargets } from '../../lib/cost/configuredTargets';
import {
  formatPlanTable,
  type ModelMeasurements,
  measurementsFromCandidate,
  parseCalibration,
  planDeployment,
} from '../../lib/cost/engine';
import { clusterNodeHere, thisMachine } from '../../lib/cost/thisMachine';
import type { DeploymentStatus, OptimizationTable, TensorSpec } from '../../workflows/types';
import { FerryError } from '../sdk/errors';
import { type ConstraintFlags, constraintsFromFlags, profileFromFlag } from './costFlags';

export interface PlanFlags extends ConstraintFlags {
  traffic: string;
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
  const profile = profileFromFlag(f.traffic, f.seed);
  const catalog = shippedCatalog();
  const deployableTargets = configuredTargets(config);
  const localCost = money('--local-cost', f.localCost) ?? config.cost.userLocalCostPerHour;
  const kubernetesNode = clusterNodeHere(catalog, deployableTargets, {
    usdPerHour: money('--node-cost', f.nodeCost),
    ...(f.nodeVcpus ? { vcpus: Number(f.nodeVcpus) } : {}),
    ...(f.nodeMemory ? { memoryGiB: Number(f.nodeMemory) } : {}),
  });
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
    local: thisMachine(localCost),
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
