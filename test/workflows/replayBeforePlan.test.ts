/**
 * Runs started before the deploy stage planned replay on today's workflow code: the histories of a
 * one-click run and of an approved review-mode run, recorded with the code of commit bc1c7b1 (activities
 * replaced, as in pipelineActivities.ts) and stored as base64 History protobufs. Without the
 * `plan-before-deploy` patch the planning activity would be a command their histories do not have, and
 * a worker that picked such a run up after an upgrade would fail it as nondeterministic.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';

// The protobuf classes the client itself decodes histories with (its own dependency).
const { temporal } = createRequire(require.resolve('@temporalio/client'))('@temporalio/proto');
const FIXTURE = path.join(__dirname, '../fixtures/histories/deploy-before-plan.json');

test('histories of runs started before the deploy stage planned replay without nondeterminism', async () => {
  const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(recorded), ['deploy:mlp:before-plan-one-click', 'deploy:mlp:before-plan-review']);
  const histories = Object.entries(recorded).map(([workflowId, b64]) => ({
    workflowId,
    history: temporal.api.history.v1.History.decode(Buffer.from(b64, 'base64')),
  }));
  for (const { workflowId, history } of histories) {
    const activities = history.events.flatMap(
      (e: { activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } }) =>
        e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    assert.ok(activities.includes('deployToLocalTarget'), `${workflowId} ran to its deploy stage`);
    assert.ok(!activities.includes('planDeploymentOptions'), `${workflowId} was recorded before the stage planned`);
    assert.ok(history.events.at(-1)?.workflowExecutionCompletedEventAttributes, `${workflowId} completed`);
  }
  let replayed = 0;
  for await (const r of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories)) {
    assert.equal(r.error, undefined, `${r.workflowId} does not replay: ${r.error?.message}`);
    replayed++;
  }
  assert.equal(replayed, 2);
});
