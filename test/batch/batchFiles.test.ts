/** The batch runner's pure parts: which files are requests, what is finished, locations and settings. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  errorNameFor,
  isRequestName,
  planBatch,
  requestOfResponse,
  responseNameFor,
  TEMP_PREFIX,
} from '../../runtime/batch/batchFiles';
import { FolderLocation, parseLocation } from '../../runtime/batch/batchLocation';
import { readBatchSettings } from '../../runtime/batch/settings';

describe('batch file names', () => {
  test('a request is any visible *.json that is not one of the outputs', () => {
    for (const name of ['a.json', 'sub/dir/b.json', 'x.response.json.json'])
      assert.equal(isRequestName(name), true, name);
    for (const name of [
      'a.txt',
      'a.json.response.json',
      'errors/a.json.error.json',
      'batch-summary.json',
      '.hidden.json',
      'sub/.ferry-batch-1234',
      '.git/x.json',
    ]) {
      assert.equal(isRequestName(name), false, name);
    }
  });

  test('response and error names keep the request name and its folders', () => {
    assert.equal(responseNameFor('sub/a.json'), 'sub/a.json.response.json');
    assert.equal(errorNameFor('sub/a.json'), 'errors/sub/a.json.error.json');
    assert.equal(requestOfResponse('sub/a.json.response.json'), 'sub/a.json');
    assert.equal(requestOfResponse('sub/a.json'), undefined);
  });

  test('the plan skips what has a response, retries what only has an error, and is sorted', () => {
    const plan = planBatch(
      ['c.json', 'a.json', 'b.json', 'notes.txt', 'd/e.json'],
      ['a.json.response.json', 'errors/b.json.error.json', 'd/e.json.response.json', 'batch-summary.json'],
    );
    assert.deepEqual(plan.requests, ['a.json', 'b.json', 'c.json', 'd/e.json']);
    assert.deepEqual(plan.done, ['a.json', 'd/e.json']);
    assert.deepEqual(plan.todo, ['b.json', 'c.json']);
  });

  test('input and output in the same folder: the outputs are not taken for requests', () => {
    const names = ['a.json', 'a.json.response.json', 'errors/b.json.error.json', 'b.json', 'batch-summary.json'];
    const plan = planBatch(names, names);
    assert.deepEqual(plan.requests, ['a.json', 'b.json']);
    assert.deepEqual(plan.todo, ['b.json']);
  });
});

describe('batch locations', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  test('s3:// and folder locations parse; a prefix ends with one slash', () => {
    assert.deepEqual(parseLocation('s3://bucket/some/prefix/'), {
      kind: 'bucket',
      bucket: 'bucket',
      prefix: 'some/prefix/',
    });
    assert.deepEqual(parseLocation('s3://bucket'), { kind: 'bucket', bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseLocation('relative/dir'), { kind: 'folder', dir: path.resolve('relative/dir') });
    assert.throws(() => parseLocation('s3:///x'), /not an s3:\/\/bucket\/prefix/);
  });

  test('a folder lists files recursively, writes atomically and cleans up what a crash left', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-batch-loc-'));
    dirs.push(dir);
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'a.json'), '{}');
    await writeFile(path.join(dir, 'sub', 'b.json'), '{}');
    await writeFile(path.join(dir, 'sub', `${TEMP_PREFIX}dead`), 'half a respo');
    const loc = new FolderLocation(dir);
    assert.deepEqual((await loc.list()).sort(), ['a.json', 'sub/.ferry-batch-dead', 'sub/b.json']);
    await loc.cleanUp();
    assert.deepEqual((await loc.list()).sort(), ['a.json', 'sub/b.json']);

    await loc.write('new/deep/c.json.response.json', '{"ok":true}');
    assert.equal(await readFile(path.join(dir, 'new/deep/c.json.response.json'), 'utf8'), '{"ok":true}');
    assert.deepEqual(await readdir(path.join(dir, 'new/deep')), ['c.json.response.json']);
    await assert.rejects(loc.write('../escape.json', 'x'), /outside/);
    assert.deepEqual(await new FolderLocation(path.join(dir, 'missing')).list(), []);
  });

  test('settings: required variables, concurrency bounds, S3 settings only when a location is s3://', () => {
    const base = { FERRY_MODEL_DIR: '/models', FERRY_BATCH_INPUT: '/in', FERRY_BATCH_OUTPUT: '/out' };
    const s = readBatchSettings(base);
    assert.equal(s.concurrency, 4);
    assert.equal(s.s3, undefined);
    assert.throws(() => readBatchSettings({ ...base, FERRY_BATCH_INPUT: '' }), /FERRY_BATCH_INPUT is not set/);
    assert.throws(() => readBatchSettings({ ...base, FERRY_BATCH_CONCURRENCY: '0' }), /1 to 1024/);
    assert.throws(() => readBatchSettings({ ...base, FERRY_BATCH_OUTPUT: 's3://b/p' }), /FERRY_S3_ENDPOINT/);
    const withS3 = readBatchSettings({
      ...base,
      FERRY_BATCH_OUTPUT: 's3://b/p',
      FERRY_S3_ENDPOINT: 'http://127.0.0.1:8333',
      FERRY_S3_ACCESS_KEY: 'k',
      FERRY_S3_SECRET_KEY: 's',
    });
    assert.deepEqual(withS3.output, { kind: 'bucket', bucket: 'b', prefix: 'p/' });
    assert.equal(withS3.s3?.endpoint, 'http://127.0.0.1:8333');
  });
});
