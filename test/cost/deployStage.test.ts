/**
 * The deploy stage's planning and choice (lib/cost/deployStage.ts, lib/cost/deployChoice.ts) on the shipped
 * catalog: every approvable plan planned with its own row among the targets configured here, a plain
 * deploy served by this machine (its cost unset counts as $0/h), a set cost letting the cluster win, the
 * budget error naming the cheapest option meeting the SLO, and the approval's option refusals.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { shippedCatalog } from '../../lib/cost/catalog/load';
import { noOptionProblem, optionRefusal, optionToDeploy } from '../../lib/cost/deployChoice';
import { type CandidateToPlan, DEFAULT_DEPLOY_TRAFFIC, planEveryCandidate } from '../../lib/cost/deployStage';
import { parseProfile } from '../../lib/cost/engine';
import type { LocalMachine, TargetKind } from '../../lib/cost/engine/types';
import { clusterNodeHere } from '../../lib/cost/thisMachine';
import { measuredTable } from '../workflows/pipelineActivities';

const catalog = shippedCatalog();
// A fixed machine, so the figures do not depend on the one running the test.
const here = (usdPerHour?: number): LocalMachine =>
  usdPerHour === undefined
    ? { vcpus: 2, memoryGiB: 8, arch: 'x86_64', usdPerHour: 0, costNotSet: true }
    : { vcpus: 2, memoryGiB: 8, arch: 'x86_64', usdPerHour };
const candidates: CandidateToPlan[] = measuredTable()
  .plans.filter((p) => p.withinBudget !== false)
  .map((p) => ({ id: p.id, row: p.row! }));

function plan(
  opts: {
    deployable?: TargetKind[];
    local?: LocalMachine;
    traffic?: string;
    budget?: number;
    target?: TargetKind;
  } = {},
) {
  const deployable = opts.deployable ?? ['local', 'kubernetes'];
  return planEveryCandidate({
    candidates,
    catalog,
    deployable,
    local: opts.local ?? here(),
    kubernetesNode: clusterNodeHere(catalog, deployable),
    request: {
      ...(opts.traffic ? { profile: parseProfile(opts.traffic) } : {}),
      constraints: { sloP95Ms: 50, ...(opts.budget !== undefined ? { budgetUsdPerMonth: opts.budget } : {}) },
    },
    ...(opts.target ? { requestedTarget: opts.target } : {}),
  });
}

describe('deploy stage planning', () => {
  test('every approvable plan is planned with its own measurements, among deployable options only', () => {
    const plans = plan();
    assert.deepEqual(Object.keys(plans), ['original', 'int8-dynamic']);
    for (const [id, p] of Object.entries(plans)) {
      assert.equal(p.full.model.source, `optimize stage, candidate ${id}`);
      const chosen = p.table.options.find((o) => o.id === p.table.chosen)!;
      assert.ok(chosen.deployable && chosen.feasible, `${id}: the choice is deployable and feasible`);
      // Options of other providers are shown with their cost and "not configured".
      assert.ok(p.table.options.some((o) => !o.deployable && o.deployNote === 'not configured' && o.feasible));
    }
    // The faster candidate has the lower expected p95 on the same option.
    const p95 = (id: string) => plans[id].table.options.find((o) => o.id === plans[id].table.chosen)!.p95Ms!;
    assert.ok(p95('int8-dynamic') < p95('original'), `${p95('int8-dynamic')} < ${p95('original')}`);
  });

  test('a plain deploy (no traffic, no cost set) is served by this machine at $0/h, marked as not set', () => {
    const p = plan().original;
    assert.equal(p.table.chosen, 'local:local:this-machine:this-machine-2vcpu');
    assert.match(p.table.profile.description, new RegExp(`^${DEFAULT_DEPLOY_TRAFFIC} \\(no --traffic given\\)`));
    const local = p.table.options[0];
    assert.equal(local.monthlyCostUsd, 0);
    assert.match(local.estimates.join(' '), /not set: FERRY_LOCAL_COST_PER_HOUR/);
  });

  test('with a cost set for this machine the cheaper cluster wins; the table keeps the schedule out', () => {
    const p = plan({ local: here(5) }).original;
    const chosen = p.table.options.find((o) => o.id === p.table.chosen)!;
    assert.equal(chosen.target, 'kubernetes');
    assert.ok(chosen.monthlyCostUsd < 5 * 730);
    const local = p.table.options.find((o) => o.strategy === 'local')!;
    assert.equal(local.monthlyCostUsd, 3650);
    assert.ok(!('schedule' in chosen) && !('service' in chosen), 'the table carries no schedule or service times');
    assert.ok(p.full.options.find((o) => o.id === chosen.id)?.schedule, 'the whole plan (Postgres) keeps them');
    assert.ok(JSON.stringify(p.table).length < 64_000, 'a table stays small enough for the status Query');
  });

  test('an ec2 option with AWS configured says the pipeline does not deploy there yet', () => {
    const p = planEveryCandidate({
      candidates,
      catalog,
      deployable: ['local'],
      configuredOnly: ['ec2'],
      local: here(),
    }).original;
    const ec2 = p.table.options.filter((o) => o.target === 'ec2');
    assert.ok(ec2.length > 0);
    for (const o of ec2) assert.equal(o.deployNote, 'configured, but the pipeline does not deploy to ec2 yet');
    assert.ok(p.table.options.some((o) => o.provider === 'gcp' && o.deployNote === 'not configured'));
  });

  test('a named target limits the plan to its options', () => {
    const p = plan({ target: 'kubernetes' }).original;
    assert.ok(p.table.options.length > 0);
    assert.ok(p.table.options.every((o) => o.target === 'kubernetes'));
    assert.equal(p.table.options.find((o) => o.id === p.table.chosen)?.provider, 'cluster');
  });

  test('nothing within the budget: no choice, and the error names the cheapest option meeting the SLO', () => {
    const p = plan({ local: here(5), traffic: '400rps', budget: 1 }).original;
    assert.equal(p.table.chosen, undefined);
    const cheapest = p.full.cheapestMeetingSlo!;
    assert.ok(cheapest);
    assert.equal(noOptionProblem(p.table, 'original'), p.table.error, "the run fails with the plan's own message");
    assert.match(
      p.table.error!,
      new RegExp(
        `^no option fits the budget of \\$1/month: the cheapest that meets the p95 SLO of 50 ms is ${cheapest.replace(/[.$]/g, '\\$&')} at \\$`,
      ),
    );
  });
});

describe('the approval of a deployment option', () => {
  const table = plan({ local: here(5) }).original.table;
  const chosen = table.chosen!;

  test('an unknown option is refused naming it and the ones that can be approved', () => {
    const msg = optionRefusal(table, 'original', 'vm-on-demand:aws:mars-1:x9.huge')!;
    assert.match(
      msg,
      /^unknown deployment option "vm-on-demand:aws:mars-1:x9\.huge" for plan "original"; choose one of: /,
    );
    assert.ok(msg.includes(chosen));
  });

  test('an infeasible or undeployable option is refused with the reason', () => {
    const notHere = table.options.find((o) => o.feasible && !o.deployable)!;
    assert.match(optionRefusal(table, 'original', notHere.id)!, /cannot be deployed from here \(not configured\)/);
    const tight = plan({ local: here(5), budget: 0.5 }).original.table;
    const over = tight.options.find((o) => o.reasonKind === 'over-budget')!;
    assert.match(optionRefusal(tight, 'original', over.id)!, /is ruled out for plan "original": over budget/);
    assert.match(optionRefusal(undefined, 'prune', chosen)!, /^plan "prune" has no deployment options/);
  });

  test("a feasible deployable option is taken; none named, the table's choice", () => {
    const other = table.options.find((o) => o.feasible && o.deployable && o.id !== chosen)!;
    assert.equal(optionRefusal(table, 'original', other.id), undefined);
    assert.equal(optionToDeploy(table, other.id)?.id, other.id);
    assert.equal(optionToDeploy(table)?.id, chosen);
  });
});
