/**
 * Checks the running dev stack (start it first: `bash infra/stack.sh start`) against real behaviour:
 * Postgres with the ferry role and migrations, an S3 round-trip in Ferry's bucket, a blob upload to the
 * registry, and Ferry's Temporal search attributes.
 *
 *   node --import tsx --test test/infra/stack.integration.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { Client } from 'pg';
import { applyMigrations, MIGRATIONS_DIR, readMigrations } from '../../infra/migrate';
import { loadConfig } from '../../lib/config';

const config = loadConfig();
/** temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (@temporalio/proto is not a direct dependency) */
const INDEXED_VALUE_TYPE_KEYWORD = 2;
const run = promisify(execFile);

/** The same URL with another database name. */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

describe('dev stack: status', () => {
  test('stack.sh status reports every service healthy (exit 0)', async () => {
    const { stdout } = await run('bash', [path.join(config.repoRoot, 'infra/stack.sh'), 'status'], {
      env: { ...process.env, TERM: 'dumb' },
    });
    for (const svc of ['temporal', 'postgres', 'seaweedfs', 'registry']) {
      assert.match(stdout, new RegExp(`^${svc}\\s+healthy`, 'm'), `${svc} should be healthy:\n${stdout}`);
    }
  });
});

describe('dev stack: postgres', () => {
  let db: Client;
  before(async () => {
    db = new Client({ connectionString: config.postgres.url });
    await db.connect();
  });
  after(async () => {
    await db?.end();
  });

  test('reachable as the ferry role', async () => {
    const { rows } = await db.query('SELECT current_user AS who, current_database() AS db');
    assert.deepEqual(rows[0], { who: 'ferry', db: 'ferry' });
  });

  test('migration 001 is applied with the checksum of its file, and the schema exists', async () => {
    const { rows } = await db.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    const files = readMigrations();
    assert.equal(rows[0]?.version, '001');
    assert.deepEqual(
      rows.map((r) => `${r.version}:${r.checksum}`),
      files.map((f) => `${f.version}:${f.checksum}`),
      'every migration file is applied with an unchanged checksum',
    );
    const tables = await db.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
    );
    const names = tables.rows.map((r) => r.table_name);
    for (const t of [
      'models',
      'model_versions',
      'optimization_results',
      'images',
      'deployments',
      'deployment_metrics',
      'deployment_events',
    ]) {
      assert.ok(names.includes(t), `table ${t} exists (have: ${names.join(', ')})`);
    }
    const idx = await db.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'deployment_metrics'`);
    assert.ok(
      idx.rows.some((r) => /\(deployment_id, collected_at\)/.test(r.indexdef)),
      'deployment_metrics has an index on (deployment_id, collected_at)',
    );
  });

  test('re-running applyMigrations is a no-op', async () => {
    const before = await db.query('SELECT version, applied_at FROM schema_migrations ORDER BY version');
    const result = await applyMigrations(config.postgres.url);
    assert.deepEqual(result.applied, []);
    assert.deepEqual(
      result.alreadyApplied,
      before.rows.map((r) => r.version),
    );
    const afterRows = await db.query('SELECT version, applied_at FROM schema_migrations ORDER BY version');
    assert.deepEqual(afterRows.rows, before.rows);
  });

  test('a changed checksum is refused (throwaway database)', async () => {
    const scratch = `ferry_migrate_test_${process.pid}_${Date.now()}`;
    const scratchUrl = withDatabase(config.postgres.url, scratch);
    const dir = mkdtempSync(path.join(tmpdir(), 'ferry-migrations-'));
    await db.query(`CREATE DATABASE ${scratch}`);
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      const first = await applyMigrations(scratchUrl, { dir });
      assert.deepEqual(
        first.applied,
        readMigrations().map((m) => m.version),
      );

      // edit the applied 001 file: the next run must refuse and apply nothing
      appendFileSync(path.join(dir, '001_initial_schema.sql'), '\nCREATE TABLE sneaky (id int);\n');
      await assert.rejects(
        applyMigrations(scratchUrl, { dir }),
        /001_initial_schema\.sql was changed after it was applied/,
      );

      const check = new Client({ connectionString: scratchUrl });
      await check.connect();
      try {
        const sneaky = await check.query(`SELECT to_regclass('sneaky') AS t`);
        assert.equal(sneaky.rows[0].t, null, 'the edited migration was not re-run');
      } finally {
        await check.end();
      }

      // a migration that fails is rolled back and not recorded
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      appendFileSync(
        path.join(dir, '999_broken.sql'),
        'CREATE TABLE half_done (id int);\nSELECT no_such_function();\n',
      );
      await assert.rejects(applyMigrations(scratchUrl, { dir }), /999_broken\.sql failed and was rolled back/);
      const check2 = new Client({ connectionString: scratchUrl });
      await check2.connect();
      try {
        const half = await check2.query(`SELECT to_regclass('half_done') AS t`);
        assert.equal(half.rows[0].t, null);
        const versions = await check2.query('SELECT version FROM schema_migrations ORDER BY version');
        assert.deepEqual(
          versions.rows.map((r) => r.version),
          readMigrations().map((m) => m.version),
          'every real migration, and not the broken one',
        );
      } finally {
        await check2.end();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await db.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
    }
  });
});

describe('dev stack: seaweedfs S3', () => {
  const s3 = new S3Client({
    endpoint: config.s3.endpoint,
    region: config.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: config.s3.accessKeyId, secretAccessKey: config.s3.secretAccessKey },
  });
  after(() => s3.destroy());

  test('put, get and delete an object in the ferry bucket', async () => {
    const Key = `test/infra/${process.pid}-${Date.now()}.bin`;
    const body = randomBytes(256 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key, Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: config.s3.bucket, Key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(bytes.length, body.length);
    assert.ok(bytes.equals(body), 'read back the same bytes');
    await s3.send(new DeleteObjectCommand({ Bucket: config.s3.bucket, Key }));
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: config.s3.bucket, Key })), (err: unknown) => {
      assert.ok(err instanceof S3ServiceException);
      assert.equal(err.$metadata.httpStatusCode, 404);
      return true;
    });
  });

  test('requests signed with a wrong secret are refused', async () => {
    const bad = new S3Client({
      endpoint: config.s3.endpoint,
      region: config.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: config.s3.accessKeyId, secretAccessKey: 'not-the-secret' },
      maxAttempts: 1,
    });
    try {
      await assert.rejects(
        bad.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key: 'test/nope', Body: 'x' })),
        (err: unknown) => {
          assert.ok(err instanceof S3ServiceException);
          assert.equal(err.$metadata.httpStatusCode, 403);
          return true;
        },
      );
    } finally {
      bad.destroy();
    }
  });
});

describe('dev stack: registry', () => {
  const base = config.registry.url;

  test('/v2/ answers 200', async () => {
    const res = await fetch(`${base}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  test('a blob upload round-trips and can be deleted', async () => {
    const repo = `ferry-test/stack-${process.pid}`;
    const blob = randomBytes(4096);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, base);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      body: blob,
    });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get('docker-content-digest'), digest);
    const get = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
    assert.equal(get.status, 200);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(blob));
    const del = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, 'delete is enabled');
    const gone = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    assert.equal(gone.status, 404);
  });
});

describe('dev stack: temporal', () => {
  test("Ferry's search attributes are registered as Keyword", async () => {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const res = await connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
      const custom = res.customAttributes ?? {};
      for (const name of ['FerryModel', 'FerryModelVersion', 'FerryStage', 'FerryDeployment']) {
        assert.equal(
          custom[name],
          INDEXED_VALUE_TYPE_KEYWORD,
          `${name} is a Keyword search attribute (have: ${JSON.stringify(custom)})`,
        );
      }
    } finally {
      await connection.close();
    }
  });
});
