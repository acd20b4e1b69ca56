/**
 * A corrupt model fails the upload stage once, without retries, with a message naming the problem,
 * and leaves nothing behind: no staged upload, no stored blob, no database rows, no image.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { getPool } from '../../lib/db/pool';
import { FerryRepository } from '../../lib/db/repository';
import { ObjectStore, objectKeys } from '../../lib/store/objectStore';
import { type FerryHarness, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
before(async () => {
  h = await startHarness('corrupt');
  await h.startWorker();
});
after(async () => h?.close());

test('random bytes are rejected once, clearly, leaving nothing behind', async () => {
  const name = `bad-${h.runId}`;
  const file = path.join(h.tmpDir, `${name}.onnx`);
  const bytes = randomBytes(4096);
  await writeFile(file, bytes);
  const sha = createHash('sha256').update(bytes).digest('hex');

  const started = await h.ferry.deploy(file, { model: name });
  await assert.rejects(h.ferry.waitForResult(started.deploymentId), /upload failed: .*not a valid ONNX model/);

  const status = await h.ferry.status(started.deploymentId);
  assert.equal(status.phase, 'failed');
  assert.equal(status.stages[0].state, 'failed');
  assert.deepEqual(
    status.stages.slice(1).map((s) => s.state),
    ['pending', 'pending', 'pending', 'pending'],
  );

  // Exactly one attempt of the upload activity: a bad model is not retried.
  const history = await h.ferry.temporal.workflow.getHandle(started.workflowId).fetchHistory();
  const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0].activityTaskStartedEventAttributes!.attempt, 1);

  // Nothing left: the staged upload is deleted, no content-addressed blob, no rows.
  const store = new ObjectStore(h.config.s3);
  assert.equal(await store.exists(objectKeys.model(sha)), false);
  const firstEvent = history.events![0].workflowExecutionStartedEventAttributes!;
  const { defaultPayloadConverter } = await import('@temporalio/common');
  const startArgs = defaultPayloadConverter.fromPayload(firstEvent.input!.payloads![0]) as {
    upload: { objectKey: string };
  };
  assert.equal(await store.exists(startArgs.upload.objectKey), false, 'staged upload removed');
  const repo = new FerryRepository(getPool(h.config.postgres.url));
  assert.equal(await repo.findModelVersion(name, started.deploymentId.slice(name.length + 1)), undefined);
  const models = await getPool(h.config.postgres.url).query(
    'SELECT 1 FROM model_versions mv JOIN models m ON m.id = mv.model_id WHERE m.name = $1',
    [name],
  );
  assert.equal(models.rowCount, 0);
});

test('a model whose node reads an undefined tensor is rejected naming it', async () => {
  const { corruptModelBytes } = await import('../../lib/onnx/generate');
  const name = `dangling-${h.runId}`;
  const file = path.join(h.tmpDir, `${name}.onnx`);
  await writeFile(file, corruptModelBytes('dangling-input'));
  const started = await h.ferry.deploy(file, { model: name });
  await assert.rejects(h.ferry.waitForResult(started.deploymentId), /dangling-input/);
});
