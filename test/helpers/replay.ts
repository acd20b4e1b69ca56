/**
 * Replays finished runs' histories against the workflow code as it is now: what a worker does after a
 * restart or a sticky-cache eviction. A nondeterminism error here means a live run would be stuck.
 */
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';

export async function assertHistoriesReplay(client: Client, workflowIds: string[]): Promise<void> {
  const histories = [];
  for (const workflowId of workflowIds)
    histories.push({ workflowId, history: await client.workflow.getHandle(workflowId).fetchHistory() });
  for await (const r of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories)) {
    assert.equal(r.error, undefined, `${r.workflowId} does not replay: ${r.error?.message}`);
  }
}
