/**
 * Review mode: the run waits for an approval; an unknown plan is refused by the Update's validator,
 * a valid approval is taken, a Signal approval works too, and without one the default is taken after
 * the timeout.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, type FerryHarness, startHarness } from '../helpers/ferryHarness';
import { assertHistoriesReplay } from '../helpers/replay';

let h: FerryHarness;
before(async () => {
  h = await startHarness('approval');
  await h.startWorker();
});
after(async () => h?.close());

async function awaitingApproval(ref: string) {
  return eventually(
    `${ref} to wait for approval`,
    async () => {
      const s = await h.ferry.status(ref);
      if (s.phase === 'failed') throw new Error(`${ref} failed: ${s.error}`);
      return s.phase === 'awaiting-approval' ? s : undefined;
    },
    90_000,
  );
}

test('an approval Update chooses the plan; an unknown plan is refused at once', async () => {
  const name = `ap-${h.runId}`;
  const started = await h.ferry.deploy(await h.writeModel(name), {
    model: name,
    mode: 'review',
    approvalTimeoutMs: 10 * 60_000,
  });

  // Too early or too late are refused too, not only unknown plans: here the run is not yet waiting.
  const waiting = await awaitingApproval(started.deploymentId);
  // The plans are the measured candidates: the original, graph-optimize (this MLP has MatMul+Add+Relu to fuse)
  // and whatever else the registry holds, each with its row of the trade-off table.
  const ids = waiting.plans?.map((p) => p.id) ?? [];
  assert.ok(ids.includes('original') && ids.includes('graph-optimize'), `plans: ${ids.join(', ')}`);
  const measuredIds = waiting.optimization?.candidates.filter((c) => c.state === 'measured').map((c) => c.id);
  assert.deepEqual(ids, measuredIds, 'the plans are exactly the measured candidates');
  for (const p of waiting.plans!)
    assert.ok(p.row && p.techniques && typeof p.withinBudget === 'boolean', `plan ${p.id} carries its measurement`);
  assert.equal(waiting.defaultPlan, waiting.optimization?.best);
  assert.ok(waiting.approvalDeadline);

  await assert.rejects(
    h.ferry.approve(started.deploymentId, 'int3-magic'),
    /unknown plan "int3-magic"; choose one of: original/,
  );
  // A candidate outside the accuracy budget is refused with the budget's reason (when the registry has a lossy technique).
  const rejected = waiting.plans!.find((p) => p.withinBudget === false);
  if (rejected)
    await assert.rejects(h.ferry.approve(started.deploymentId, rejected.id), /is outside the accuracy budget: /);
  assert.equal(
    (await h.ferry.status(started.deploymentId)).phase,
    'awaiting-approval',
    'a refused approval changes nothing',
  );

  const chosen = await h.ferry.approve(started.deploymentId, 'original', 'alice');
  assert.equal(chosen.plan, 'original');
  assert.equal(chosen.source, 'approved');

  const done = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(done.phase, 'live');
  assert.equal(done.chosenPlan?.plan, 'original');
  assert.equal(done.chosenPlan?.approvedBy, 'alice');
  assert.equal(done.benchmark?.maxAbsDiff, 0, 'the original plan serves the very same model');

  // Once past the approval, further approvals are refused with the reason.
  await assert.rejects(h.ferry.approve(started.deploymentId, 'original'), /not waiting for an approval/);
  await h.ferry.undeploy(started.deploymentId);
  // The approval Update ended the wait for the deadline in the same workflow task: that history must replay.
  await assertHistoriesReplay(h.ferry.temporal, [started.workflowId]);
});

test('an approval Signal (chat-ops) chooses the plan', async () => {
  const name = `sg-${h.runId}`;
  const started = await h.ferry.deploy(
    await h.writeModel(name, { inputDim: 16, hiddenDims: [32], outputDim: 4, seed: 9 }),
    {
      model: name,
      mode: 'review',
      approvalTimeoutMs: 10 * 60_000,
    },
  );
  await awaitingApproval(started.deploymentId);
  // An unknown plan is ignored by the run, and the sender is told so rather than "sent".
  const bogus = await h.ferry.approveBySignal(started.deploymentId, 'bogus-plan', 'bob', 1500);
  assert.deepEqual(bogus, { taken: false });
  const taken = await h.ferry.approveBySignal(started.deploymentId, 'graph-optimize', 'bob');
  assert.equal(taken.taken, true);
  assert.equal(taken.chosen?.plan, 'graph-optimize');
  // Past the approval, a Signal is not even sent: the run waits for none.
  await assert.rejects(
    h.ferry.approveBySignal(started.deploymentId, 'original', 'bob'),
    /not waiting for an approval \(phase/,
  );
  const done = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(done.chosenPlan?.plan, 'graph-optimize');
  assert.equal(done.chosenPlan?.approvedBy, 'bob');
  await h.ferry.undeploy(started.deploymentId);
  await assertHistoriesReplay(h.ferry.temporal, [started.workflowId]);
});

test('without an approval the default plan is taken after the timeout', async () => {
  const name = `to-${h.runId}`;
  const t0 = Date.now();
  const started = await h.ferry.deploy(
    await h.writeModel(name, { inputDim: 16, hiddenDims: [16], outputDim: 4, seed: 5 }),
    {
      model: name,
      mode: 'review',
      approvalTimeoutMs: 2000,
    },
  );
  const done = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(done.chosenPlan?.source, 'default-after-timeout');
  assert.equal(done.chosenPlan?.plan, done.defaultPlan);
  assert.ok(Date.now() - t0 >= 2000, 'it waited for the timeout');
  await h.ferry.undeploy(started.deploymentId);
  await assertHistoriesReplay(h.ferry.temporal, [started.workflowId]);
});
