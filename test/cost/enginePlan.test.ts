/**
 * The cost engine end to end on a small inline catalog: ranking, the choice, constraints, the budget
 * error, infeasible reasons, determinism and the printed table.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InstancePrice, PriceCatalog, ServerlessPrice } from '../../lib/cost/catalog/types';
import {
  formatPlanTable,
  type ModelMeasurements,
  PlanError,
  type PlanInput,
  parseBudget,
  parseLatency,
  parseProfile,
  planDeployment,
  regionMatches,
  requireChoice,
} from '../../lib/cost/engine';
import { seededUniform } from '../../lib/seededRandom';

const src = { url: 'https://example.test/prices', retrieved: '2026-12-01' };
const vm = (p: Partial<InstancePrice> & Pick<InstancePrice, 'instanceType' | 'onDemandUsdPerHour'>): InstancePrice => ({
  provider: 'aws',
  region: 'us-east-1',
  family: 'general-purpose',
  vcpus: 2,
  memoryGiB: 8,
  arch: 'x86_64',
  source: src,
  ...p,
});
const lambda = (region: string): ServerlessPrice => ({
  provider: 'aws',
  service: 'aws-lambda',
  region,
  arch: 'x86_64',
  usdPerMillionRequests: 0.2,
  usdPerGbSecond: 0.0000166667,
  usdPerVcpuSecond: 0,
  limits: {
    maxMemoryGiB: 10,
    maxVcpus: 6,
    maxTimeoutSeconds: 900,
    maxRequestBytes: 6 * 2 ** 20,
    maxImageBytes: 10 * 2 ** 30,
    maxConcurrencyPerInstance: 1,
  },
  source: src,
});

const catalog: PriceCatalog = {
  schemaVersion: 1,
  snapshotDate: '2026-12-01',
  contentHash: 'f'.repeat(64),
  instances: [
    vm({
      instanceType: 'm7i.large',
      onDemandUsdPerHour: 0.1008,
      spotUsdPerHour: { 'us-east-1a': 0.04, 'us-east-1b': 0.035, 'us-east-1c': 0.045 },
      interruption: '<5%',
    }),
    vm({
      instanceType: 'c7g.large',
      family: 'compute-optimized',
      arch: 'arm64',
      memoryGiB: 4,
      onDemandUsdPerHour: 0.0725,
      spotUsdPerHour: { 'us-east-1a': 0.029, 'us-east-1d': 0.031 },
      interruption: '5-10%',
    }),
    vm({ instanceType: 't4g.nano', arch: 'arm64', memoryGiB: 0.5, onDemandUsdPerHour: 0.0042 }),
    vm({ instanceType: 'm7i.large', region: 'eu-west-1', onDemandUsdPerHour: 0.112 }),
    vm({ provider: 'gcp', region: 'us-central1', instanceType: 'e2-standard-2', onDemandUsdPerHour: 0.067 }),
    vm({
      instanceType: 'g4dn.xlarge',
      family: 'gpu',
      vcpus: 4,
      memoryGiB: 16,
      onDemandUsdPerHour: 0.526,
      accelerator: { kind: 'nvidia-t4', count: 1, memoryGiB: 16 },
    }),
  ],
  serverless: [lambda('us-east-1')],
  egress: [],
};

const model: ModelMeasurements = {
  source: 'test',
  batch1: { meanMs: 2.2, p50Ms: 2, p95Ms: 3 },
  threads: 2,
  peakRssBytes: 200 * 2 ** 20,
  modelSizeBytes: 10 * 2 ** 20,
  loadMs: 100,
  coldStartMs: 250,
  coldStartMeasured: false,
  requestBytes: 2000,
};

const input = (over: Partial<PlanInput> & { traffic?: string } = {}): PlanInput => ({
  model,
  profile: parseProfile(over.traffic ?? '50rps', { random: seededUniform(1) }),
  constraints: { sloP95Ms: 50 },
  catalog,
  deployableTargets: ['local'],
  allOptions: true,
  ...over,
});

describe('the plan', () => {
  test('the cheapest feasible option is chosen; feasible ones come first, cheapest first', () => {
    const plan = planDeployment(input());
    const chosen = requireChoice(plan);
    assert.ok(chosen.feasible);
    const feasible = plan.options.filter((o) => o.feasible);
    assert.equal(feasible[0].id, plan.chosen);
    for (let i = 1; i < feasible.length; i++) assert.ok(feasible[i - 1].monthlyCostUsd <= feasible[i].monthlyCostUsd);
    const firstInfeasible = plan.options.findIndex((o) => !o.feasible);
    assert.ok(firstInfeasible === -1 || plan.options.slice(firstInfeasible).every((o) => !o.feasible));
    assert.ok(chosen.p95Ms! <= 50);
  });

  test('an instance too small for the replica is infeasible: does not fit in memory', () => {
    const plan = planDeployment(input({ traffic: '5rps', allOptions: false }));
    const nano = plan.options.find((o) => o.instanceType === 't4g.nano' && o.strategy === 'vm-on-demand');
    assert.ok(nano, 'kept in the table: it is cheaper than the group best');
    assert.equal(nano.feasible, false);
    assert.equal(nano.reasonKind, 'no-memory');
    assert.match(nano.reason!, /does not fit in memory: a replica needs 200 MiB/);
  });

  test('the same input gives the same plan', () => {
    const a = planDeployment(input({ traffic: 'peak=80rps,trough=2rps,peak-hours=9-18' }));
    const b = planDeployment(input({ traffic: 'peak=80rps,trough=2rps,peak-hours=9-18' }));
    assert.deepEqual(a, b);
    assert.deepEqual(JSON.parse(JSON.stringify(a)), a, 'plain JSON data (payloads, Postgres)');
  });

  test('on demand at the busiest hour: a diurnal day costs less than the peak all day', () => {
    const id = 'vm-on-demand:aws:us-east-1:m7i.large';
    const flat = planDeployment(input({ traffic: '2000rps' })).options.find((o) => o.id === id)!;
    const day = planDeployment(input({ traffic: 'peak=2000rps,trough=20rps,peak-hours=9-18' })).options.find(
      (o) => o.id === id,
    )!;
    assert.ok(flat.instances.max > 1);
    assert.equal(day.instances.max, flat.instances.max);
    assert.ok(day.monthlyCostUsd < flat.monthlyCostUsd * 0.6);
  });

  test('spot with an on-demand base is cheaper than on demand at scale and meets the SLO', () => {
    const plan = planDeployment(input({ traffic: '3000rps', constraints: { sloP95Ms: 50, providers: ['aws'] } }));
    const od = plan.options.find((o) => o.id === 'vm-on-demand:aws:us-east-1:m7i.large')!;
    const spot = plan.options.find((o) => o.id === 'vm-spot:aws:us-east-1:m7i.large')!;
    assert.ok(spot.feasible, spot.reason);
    assert.ok(spot.monthlyCostUsd < od.monthlyCostUsd * 0.6, `${spot.monthlyCostUsd} vs ${od.monthlyCostUsd}`);
    assert.ok(spot.instances.max > od.instances.max, 'overprovisioned');
    assert.deepEqual(spot.schedule!.zones, ['us-east-1b', 'us-east-1a', 'us-east-1c'], 'cheapest zones first');
    assert.equal(spot.schedule!.onDemand[0], 1);
    assert.equal(spot.risk, 'medium');
  });

  test('bursty traffic with long idle gaps goes serverless, far below an always-on VM', () => {
    const plan = planDeployment(input({ traffic: 'bursty:burst=100rps,bursts=4,burst-minutes=5' }));
    const chosen = requireChoice(plan);
    assert.equal(chosen.strategy, 'serverless');
    const od = plan.options.find((o) => o.id === 'vm-on-demand:aws:us-east-1:m7i.large')!;
    assert.ok(chosen.monthlyCostUsd < od.monthlyCostUsd * 0.2);
    assert.ok(chosen.coldStartShare! > 0 && chosen.coldStartShare! < 0.01);
  });

  test('--max-cold-start rules serverless out with the reason', () => {
    const plan = planDeployment(
      input({
        traffic: 'bursty:burst=100rps,bursts=4,burst-minutes=5',
        constraints: { sloP95Ms: 50, maxColdStartMs: 200 },
      }),
    );
    const lambdaOpt = plan.options.find((o) => o.strategy === 'serverless')!;
    assert.equal(lambdaOpt.feasible, false);
    assert.equal(lambdaOpt.reasonKind, 'cold-start');
    assert.notEqual(requireChoice(plan).strategy, 'serverless');
  });

  test('a model too big for a serverless limit', () => {
    const big = { ...model, peakRssBytes: 12 * 2 ** 30 };
    const plan = planDeployment(input({ model: big }));
    const s = plan.options.find((o) => o.strategy === 'serverless')!;
    assert.equal(s.reasonKind, 'serverless-limit');
    assert.match(s.reason!, /over a serverless limit: needs 14\.40 GiB, aws-lambda allows 10 GiB/);
  });
});

describe('constraints', () => {
  test('parsing: latencies, budgets, region globs', () => {
    assert.equal(parseLatency('50ms'), 50);
    assert.equal(parseLatency('2s'), 2000);
    assert.equal(parseBudget('200/month'), 200);
    assert.equal(parseBudget('$10/day'), (10 * 730) / 24);
    assert.throws(() => parseBudget('lots'), /not a budget/);
    assert.ok(regionMatches('us-east-1', ['us-*']));
    assert.ok(!regionMatches('eu-west-1', ['us-*']));
    assert.ok(regionMatches('eu-west-1', ['us-*', 'eu-west-1']));
    assert.ok(!regionMatches('us-east-1x', ['us-east-1']));
  });

  test('providers, regions, arch and --no-spot filter what is considered', () => {
    const gcp = planDeployment(input({ constraints: { sloP95Ms: 50, providers: ['gcp'] } }));
    assert.ok(gcp.options.length > 0 && gcp.options.every((o) => o.provider === 'gcp'));
    const eu = planDeployment(input({ constraints: { sloP95Ms: 50, regions: ['eu-*'] } }));
    assert.ok(eu.options.every((o) => o.region === 'eu-west-1'));
    const arm = planDeployment(input({ constraints: { sloP95Ms: 50, arch: 'arm64' } }));
    assert.ok(arm.options.every((o) => ['c7g.large', 't4g.nano'].includes(o.instanceType)));
    const noSpot = planDeployment(input({ traffic: '3000rps', constraints: { sloP95Ms: 50, noSpot: true } }));
    assert.ok(!noSpot.options.some((o) => o.strategy === 'vm-spot'));
  });

  test('--gpu considers GPU types only, and this machine cannot serve', () => {
    const plan = planDeployment(
      input({
        constraints: { sloP95Ms: 50, gpu: true },
        local: { vcpus: 2, memoryGiB: 8, arch: 'x86_64', usdPerHour: 0.01 },
      }),
    );
    const clouds = plan.options.filter((o) => o.strategy !== 'local');
    assert.ok(clouds.length > 0 && clouds.every((o) => o.instanceType === 'g4dn.xlarge'));
    const local = plan.options.find((o) => o.strategy === 'local')!;
    assert.equal(local.reasonKind, 'needs-gpu');
    assert.equal(plan.chosen?.includes('g4dn.xlarge'), true);
  });

  test('when nothing fits the budget, the error names the cheapest option that meets the SLO', () => {
    const plan = planDeployment(input({ traffic: '500rps', constraints: { sloP95Ms: 50, budgetUsdPerMonth: 1 } }));
    assert.equal(plan.chosen, undefined);
    const cheapest = planDeployment(input({ traffic: '500rps' })).chosen!;
    assert.equal(plan.cheapestMeetingSlo, cheapest);
    assert.match(
      plan.error!,
      new RegExp(
        `budget of \\$1/month: the cheapest that meets the p95 SLO of 50 ms is ${cheapest.replace(/[.$]/g, '\\$&')} at \\$`,
      ),
    );
    assert.throws(
      () => requireChoice(plan),
      (e: Error) => e instanceof PlanError && e.message.includes(cheapest),
    );
    assert.ok(plan.options.some((o) => o.reasonKind === 'over-budget'));
  });

  test('an SLO below the service time: nothing meets it, and the error says so', () => {
    const plan = planDeployment(input({ constraints: { sloP95Ms: 1 } }));
    assert.equal(plan.chosen, undefined);
    assert.match(plan.error!, /no option meets the p95 SLO of 1 ms; the closest is /);
    assert.ok(plan.options.every((o) => o.reasonKind === 'slo-unmet' || o.reasonKind === 'no-memory'));
  });

  test('--users-in: the round trip counts against the SLO', () => {
    const plan = planDeployment(input({ constraints: { sloP95Ms: 40, usersIn: 'eu-west-1' } }));
    const chosen = requireChoice(plan);
    assert.equal(chosen.region, 'eu-west-1');
    const us = plan.options.find((o) => o.id === 'vm-on-demand:aws:us-east-1:m7i.large')!;
    assert.equal(us.feasible, false);
    assert.ok(us.networkRttMs! > 40);
    assert.ok(chosen.networkRttMs! <= 5);
  });

  test('deployable only: the cheapest option whose target is configured; none configured is an error', () => {
    const local = { vcpus: 2, memoryGiB: 8, arch: 'x86_64' as const, usdPerHour: 0.5 };
    const any = planDeployment(input({ local }));
    assert.notEqual(requireChoice(any).strategy, 'local', 'local at $0.5/h is not the cheapest');
    const here = planDeployment(input({ local, deployableOnly: true }));
    assert.equal(requireChoice(here).strategy, 'local');
    assert.equal(requireChoice(here).deployable, true);
    const ec2 = planDeployment(input({ deployableTargets: ['local', 'ec2'], deployableOnly: true }));
    assert.equal(requireChoice(ec2).provider, 'aws');
    assert.ok(['vm-on-demand', 'vm-spot'].includes(requireChoice(ec2).strategy));
    const none = planDeployment(input({ deployableOnly: true }));
    assert.equal(none.chosen, undefined);
    assert.match(none.error!, /no option deployable here meets/);
    assert.equal(any.options.find((o) => o.strategy === 'serverless')!.deployNote, 'not configured');
  });

  test('an explicit target constrains the plan to it', () => {
    const plan = planDeployment(
      input({
        constraints: { sloP95Ms: 50, targets: ['kubernetes'] },
        kubernetesNode: {
          node: { vcpus: 4, memoryGiB: 16, arch: 'x86_64', usdPerHour: 0.2 },
          priceBasis: '--node-cost',
        },
        deployableTargets: ['local', 'kubernetes'],
      }),
    );
    assert.ok(plan.options.every((o) => o.target === 'kubernetes'));
    assert.equal(requireChoice(plan).id, 'kubernetes:cluster:kubeconfig:node-4vcpu-16gib');
  });

  test('a named edge device: no hourly price, arm64, and infeasible when the load is beyond it', () => {
    const light = planDeployment(input({ traffic: '5rps', edgeDevice: 'raspberry-pi-5' }));
    const edge = light.options.find((o) => o.strategy === 'edge')!;
    assert.ok(edge.feasible);
    assert.equal(edge.monthlyCostUsd, 0);
    const heavy = planDeployment(input({ traffic: '5000rps', edgeDevice: 'raspberry-pi-5' }));
    const over = heavy.options.find((o) => o.strategy === 'edge')!;
    assert.equal(over.feasible, false);
    assert.match(over.reason!, /at the peak, it has 1/);
    assert.throws(() => planDeployment(input({ edgeDevice: 'toaster' })), /unknown edge device "toaster"/);
  });
});

test('the considered-options table marks the choice', () => {
  const plan = planDeployment(input({ traffic: 'peak=80rps,trough=2rps,peak-hours=9-18' }));
  const lines = formatPlanTable(plan);
  const marked = lines.filter((l) => l.startsWith('✔'));
  assert.equal(marked.length, 1);
  const chosen = requireChoice(plan);
  assert.ok(marked[0].includes(chosen.instanceType) && marked[0].includes(chosen.region));
  assert.ok(lines.some((l) => l.startsWith(`Chosen: ${chosen.id}`)));
  assert.ok(lines.some((l) => l.includes('not configured')));
});
