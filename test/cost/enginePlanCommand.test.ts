/** `ferry plan report.json --json`: the engine on a `ferry optimize` report, priced from the shipped catalog. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { planCommand } from '../../client/cli/plan';
import { loadConfig } from '../../lib/config';

const row = {
  sizeBytes: 10 * 2 ** 20,
  gzipBytes: 9 * 2 ** 20,
  loadMs: 80,
  batch1: { batchSize: 1, iterations: 500, throughputPerSec: 400, p50Ms: 2.4, p95Ms: 3.1, meanMs: 2.5 },
  peakRssBytes: 180 * 2 ** 20,
  modelRssBytes: 40 * 2 ** 20,
  agreement: { maxAbsError: 0, cosine: 1, top1: 1, samples: 64 },
  cores: 2,
  costPerMillionUsd: 0.1,
  vsOriginal: { sizeRatio: 1, gzipRatio: 1, speedupP50: 1, memoryRatio: 1 },
};

async function runPlan(args: Record<string, unknown>): Promise<{ out: string; exitCode: number | undefined }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-plan-test-'));
  const report = path.join(dir, 'report.json');
  await writeFile(report, JSON.stringify({ table: { best: 'original', candidates: [{ id: 'original', row }] } }));
  const lines: string[] = [];
  const log = console.log;
  const before = process.exitCode;
  console.log = (s: string) => lines.push(s);
  try {
    // No kubeconfig, no AWS credentials and no local cost, whatever this machine has: only local is configured.
    const config = {
      ...loadConfig(),
      kubernetes: { kubeconfig: path.join(dir, 'no-kubeconfig'), namespace: 'default' },
      aws: { variables: {} },
      cost: { userLocalCostPerHour: undefined },
    };
    await planCommand(report, { traffic: '20rps', json: true, ...args }, config, async () => {
      throw new Error('no deployment is read');
    });
    return { out: lines.join('\n'), exitCode: process.exitCode as number | undefined };
  } finally {
    console.log = log;
    process.exitCode = before;
    await rm(dir, { recursive: true, force: true });
  }
}

test('--json names the chosen option and gives each option the fields tools read', async () => {
  const { out } = await runPlan({ sloP95: '50ms', localCost: '0.01', env: undefined });
  const plan = JSON.parse(out);
  assert.equal(typeof plan.chosen, 'string');
  const chosen = plan.options.find((o: { id: string }) => o.id === plan.chosen);
  for (const key of ['id', 'strategy', 'provider', 'region', 'instanceType', 'monthlyCostUsd', 'p95Ms', 'feasible'])
    assert.ok(key in chosen, key);
  assert.equal(chosen.feasible, true);
  const local = plan.options.find((o: { strategy: string }) => o.strategy === 'local');
  assert.equal(local.deployable, true);
  assert.ok(plan.options.some((o: { deployNote?: string }) => o.deployNote === 'not configured'));
});

test('--deployable-only with a local cost chooses this machine; a budget nothing meets sets exit code 1', async () => {
  const here = JSON.parse((await runPlan({ sloP95: '50ms', localCost: '0.2', deployableOnly: true })).out);
  assert.equal(
    here.chosen,
    `local:local:this-machine:${here.options.find((o: { strategy: string }) => o.strategy === 'local').instanceType}`,
  );
  const broke = await runPlan({ sloP95: '50ms', budget: '0.5/month' });
  const plan = JSON.parse(broke.out);
  assert.equal(plan.chosen, undefined);
  assert.match(plan.error, /budget of \$0\.5\/month: the cheapest that meets the p95 SLO of 50 ms is /);
  assert.equal(broke.exitCode, 1);
});
