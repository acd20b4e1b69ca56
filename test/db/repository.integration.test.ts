/**
 * A model version is immutable: recording it again with other bytes is refused with a typed error that
 * callers branch on (the upload activity turns it into a non-retryable ModelVersionConflict). Against the
 * dev stack's PostgreSQL; the rows it writes are removed afterwards.
 *
 *   node --import tsx --test test/db/repository.integration.test.ts
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Pool } from 'pg';
import { loadConfig } from '../../lib/config';
import { FerryRepository, ModelVersionConflictError } from '../../lib/db/repository';

const pool = new Pool({ connectionString: loadConfig().postgres.url, max: 2 });
const repo = new FerryRepository(pool);
const model = `test-repository-${process.pid}-${Date.now()}`;

after(async () => {
  await pool.query('DELETE FROM model_versions WHERE model_id IN (SELECT id FROM models WHERE name = $1)', [model]);
  await pool.query('DELETE FROM models WHERE name = $1', [model]);
  await pool.end();
});

const version = (sha256: string) => ({
  model,
  version: 'v1',
  sha256,
  sizeBytes: 4,
  objectKey: `models/sha256/${sha256}.onnx`,
  analysis: {},
});

test('the same version with the same bytes is the same row; with other bytes a ModelVersionConflictError', async () => {
  const first = await repo.recordModelVersion(version('a'.repeat(64)));
  assert.equal(await repo.recordModelVersion(version('a'.repeat(64))), first, 'recording it again is idempotent');
  await assert.rejects(repo.recordModelVersion(version('b'.repeat(64))), (err: unknown) => {
    assert.ok(err instanceof ModelVersionConflictError, `got ${String(err)}`);
    assert.deepEqual([err.model, err.version, err.recordedSha256], [model, 'v1', 'a'.repeat(64)]);
    assert.match(err.message, /already exists with different content .*choose a new version/);
    return true;
  });
  const row = await repo.findModelVersion(model, 'v1');
  assert.equal(row?.sha256, 'a'.repeat(64), 'the refused write changed nothing');
});
