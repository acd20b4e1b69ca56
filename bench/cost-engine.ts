/**
 * The cost engine's targets (issue 12), in one run: three profiles (steady, diurnal, bursty with long idle
 * gaps) for the example model (~10 MB MLP) and a medium one (~100 MB), each measured here the way the
 * optimize stage measures (its engine, original candidate), planned against the shipped catalog.
 *
 *   npx tsx bench/cost-engine.ts [--measure-ms 600] [--seed 1] [--providers aws]
 *
 * For each profile: the chosen option's monthly cost against an always-on on-demand fleet sized for the
 * peak (the cheapest instance type that meets the SLO at the peak, running all month: what a user picks by
 * hand), and a discrete-event replay of the day through the chosen option (lib/cost/engine/replay.ts) with
 * the predicted service times and cold starts: p95 and the share within the SLO.
 * Then spot with on-demand fallback against all on demand (same type, same region) at a steady load that
 * needs several instances, replayed under an interruption trace harsher than the catalog's band: single
 * interruptions every 2 hours and one zone-wide reclaim in the day.
 * Goals: bursty ≤ 20% of always-on at the same p95 SLO; spot ≥ 43% cheaper with ≥ 99% within the SLO.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { shippedCatalog } from '../lib/cost/catalog/load';
import {
  type DeploymentPlan,
  type ModelMeasurements,
  measurementsFromCandidate,
  type PlanOption,
  parseProfile,
  planDeployment,
} from '../lib/cost/engine';
import { type Interruption, type ReplayResult, replayFleet, replayServerless } from '../lib/cost/engine/replay';
import { REPLACEMENT_MS } from '../lib/cost/engine/strategies/spot';
import { HOURS_PER_MONTH } from '../lib/cost/engine/workloadProfile';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import { runOptimizationEngineInChild } from '../lib/optimize/engineProcess';
import { seededUniform } from '../lib/seededRandom';

const { values: args } = parseArgs({
  options: {
    'measure-ms': { type: 'string', default: '600' },
    seed: { type: 'string', default: '1' },
    providers: { type: 'string', default: 'aws,gcp,azure' },
  },
});
const seed = Number(args.seed);
const catalog = shippedCatalog();
const providers = args.providers!.split(',');

async function measure(name: string, sizeMb: number, dir: string): Promise<ModelMeasurements> {
  const file = path.join(dir, `${name}.onnx`);
  await writeFile(file, generateMlpModel(exampleModelSpec(sizeMb)));
  const result = await runOptimizationEngineInChild(file, {
    workDir: path.join(dir, name),
    techniques: [],
    measure: { measureMs: Number(args['measure-ms']) },
  });
  const row = result.table.candidates.find((c) => c.id === result.table.best)!.row!;
  return measurementsFromCandidate(row, {
    source: `measured here (${name}, ${sizeMb} MB)`,
    inputs: result.analysis.inputs,
  });
}

function plan(model: ModelMeasurements, traffic: string, sloP95Ms: number, extra: object = {}): DeploymentPlan {
  return planDeployment({
    model,
    profile: parseProfile(traffic, { random: seededUniform(seed) }),
    constraints: { sloP95Ms, providers, ...extra },
    catalog,
    deployableTargets: ['local'],
    allOptions: true,
  });
}

/** Always on, sized for the peak: the cheapest on-demand type × its peak count, all month. */
function alwaysOn(p: DeploymentPlan): { option: PlanOption; monthly: number } {
  const od = p.options.filter((o) => o.strategy === 'vm-on-demand' && o.feasible);
  const priced = od.map((o) => ({ option: o, monthly: (o.monthlyCostUsd / o.instances.mean) * o.instances.max }));
  priced.sort((a, b) => a.monthly - b.monthly);
  return priced[0];
}

function replay(p: DeploymentPlan, o: PlanOption, interruptions?: Interruption[]): ReplayResult {
  const rates = parseProfile(p.profile.description, { random: seededUniform(seed) }).perMinuteRps;
  const random = seededUniform(seed + 1000);
  if (o.strategy === 'serverless')
    return replayServerless({
      rates,
      service: o.service!,
      coldStartMs: o.coldStartMs!,
      keepWarmMs: o.serverless!.keepWarmMs,
      sloMs: p.constraints.sloP95Ms,
      random,
    });
  return replayFleet({
    rates,
    service: o.service!,
    schedule: o.schedule!,
    sloMs: p.constraints.sloP95Ms,
    random,
    interruptions,
    replacementMs: REPLACEMENT_MS,
  });
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-cost-'));
  try {
    console.log(
      `catalog ${catalog.snapshotDate} (${catalog.contentHash.slice(0, 12)}), providers ${providers.join(',')}, seed ${seed}`,
    );
    for (const [name, sizeMb] of [
      ['example', 10],
      ['medium', 100],
    ] as const) {
      const model = await measure(name, sizeMb, dir);
      // The SLO: 100 ms, or 4× the measured p95 for a model too slow for that.
      const slo = Math.max(100, Math.ceil(4 * model.batch1.p95Ms));
      console.log(
        `\n== ${name} model: batch-1 p50 ${model.batch1.p50Ms.toFixed(2)} ms, p95 ${model.batch1.p95Ms.toFixed(2)} ms (${model.threads} threads), peak RSS ${(model.peakRssBytes / 2 ** 20).toFixed(0)} MiB, cold start ${model.coldStartMs.toFixed(0)} ms (estimated); SLO p95 ${slo} ms`,
      );
      for (const [kind, traffic] of [
        ['steady', '50rps'],
        ['diurnal', 'peak=80rps,trough=2rps,peak-hours=9-18'],
        ['bursty', 'bursty:burst=60rps,bursts=4,burst-minutes=10'],
      ] as const) {
        const p = plan(model, traffic, slo);
        const chosen = p.options.find((o) => o.id === p.chosen);
        if (!chosen) {
          console.log(`  ${kind.padEnd(8)} no choice: ${p.error}`);
          continue;
        }
        const base = alwaysOn(p);
        const r = replay(p, chosen);
        console.log(
          `  ${kind.padEnd(8)} ${traffic}\n` +
            `           chosen ${chosen.id}: $${chosen.monthlyCostUsd.toFixed(2)}/month, model p95 ${chosen.p95Ms} ms\n` +
            `           always-on ${base.option.instances.max} × ${base.option.instanceType} (${base.option.region}): $${base.monthly.toFixed(2)}/month → chosen = ${pct(chosen.monthlyCostUsd / base.monthly)} of it\n` +
            `           replay: ${r.requests.toLocaleString('en-US')} requests, p95 ${r.p95Ms.toFixed(1)} ms, ${pct(r.withinSloShare)} within ${slo} ms${r.coldStarts ? `, ${r.coldStarts} cold starts` : ''}`,
        );
      }

      // Spot with on-demand fallback vs all on demand, same type and region, at a load that needs several instances.
      const rps = name === 'example' ? 800 : 120;
      const p = plan(model, `${rps}rps`, slo, { regions: ['us-east-1'], providers: ['aws'] });
      const spots = p.options.filter(
        (o) => o.strategy === 'vm-spot' && o.feasible && o.schedule?.spot?.some((s) => s > 0),
      );
      spots.sort((a, b) => a.monthlyCostUsd - b.monthlyCostUsd);
      const spot = spots[0];
      if (!spot) {
        console.log(`  spot     no feasible spot option at ${rps} rps`);
        continue;
      }
      const od = p.options.find((o) => o.id === spot.id.replace('vm-spot', 'vm-on-demand'))!;
      const spotN = spot.schedule!.spot![0];
      const zoneShare = Math.ceil(spotN / spot.schedule!.zones!.length);
      const trace: Interruption[] = [
        ...Array.from({ length: 12 }, (_, i) => ({ atMs: (i * 2 + 1) * 3_600_000, instances: 1 })),
        { atMs: 14.5 * 3_600_000, instances: zoneShare },
      ];
      const r = replay(p, spot, trace);
      const calm = replay(p, od);
      console.log(
        `  spot     ${rps}rps steady, ${spot.instanceType} in us-east-1: ${spot.schedule!.onDemand[0]} on demand + ${spotN} spot over ${spot.schedule!.zones!.join(', ')}\n` +
          `           spot $${spot.monthlyCostUsd.toFixed(2)}/month vs all on demand (${od.instances.max} × $${(od.monthlyCostUsd / od.instances.mean / HOURS_PER_MONTH).toFixed(4)}/h) $${od.monthlyCostUsd.toFixed(2)}/month → ${pct(1 - spot.monthlyCostUsd / od.monthlyCostUsd)} cheaper\n` +
          `           replay under ${trace.length} interruptions (12 single, 1 zone-wide of ${zoneShare}, each ${REPLACEMENT_MS / 1000} s until replaced): ${r.requests.toLocaleString('en-US')} requests, p95 ${r.p95Ms.toFixed(1)} ms, ${pct(r.withinSloShare)} within ${slo} ms (all on demand, no interruptions: p95 ${calm.p95Ms.toFixed(1)} ms, ${pct(calm.withinSloShare)})`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
