/**
 * Checks the running dev stack (start it first: `bash infra/stack.sh start`) against real behaviour:
 * Postgres with the ferry role and migrations, an S3 round-trip in Ferry's bucket, a blob upload to the
 * registry, and Ferry's Temporal search attributes; and that the store and the registry turn away
 * whoever lacks the stack's credentials (S3, the filer and volume ports, the internal gRPC, /v2/).
 * Another stack than the default one: eval "$(FERRY_STATE_DIR=... bash infra/stack.sh env)" first.
 *
 *   node --import tsx --test test/infra/stack.integration.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
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

/**
 * Whoever lacks the stack's keys gets nothing from the store: not through S3, not through the filer's or
 * the volume server's HTTP ports, not through the components' gRPC. Ports as stack.sh lays them out.
 */
describe('dev stack: seaweedfs refuses anonymous access to a model', () => {
  const s3Port = Number(new URL(config.s3.endpoint).port);
  const filerPort = Number(process.env.FERRY_S3_FILER_PORT || s3Port + 3);
  const volumePort = Number(process.env.FERRY_S3_VOLUME_PORT || s3Port + 2);
  const masterPort = Number(process.env.FERRY_S3_MASTER_PORT || s3Port + 1);
  const grpcOffset = 10_000;
  const Key = `models/stack-test-${process.pid}/1/model.onnx`;
  const body = randomBytes(64 * 1024);
  const s3 = new S3Client({
    endpoint: config.s3.endpoint,
    region: config.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: config.s3.accessKeyId, secretAccessKey: config.s3.secretAccessKey },
  });

  /** The object is still there, unchanged (read with the keys). */
  async function stillThere(): Promise<void> {
    const got = await s3.send(new GetObjectCommand({ Bucket: config.s3.bucket, Key }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body), 'the model is intact');
  }

  before(async () => {
    await s3.send(new PutObjectCommand({ Bucket: config.s3.bucket, Key, Body: body }));
  });
  after(async () => {
    await s3.send(new DeleteObjectCommand({ Bucket: config.s3.bucket, Key })).catch(() => undefined);
    s3.destroy();
  });

  test('S3: an anonymous GET and DELETE of the object get 403', async () => {
    const url = `${config.s3.endpoint}/${config.s3.bucket}/${Key}`;
    for (const method of ['GET', 'DELETE', 'PUT']) {
      const res = await fetch(url, { method, body: method === 'PUT' ? 'x' : undefined });
      assert.equal(res.status, 403, `${method} ${url}`);
      assert.match(await res.text(), /AccessDenied/);
    }
    assert.equal((await fetch(`${config.s3.endpoint}/${config.s3.bucket}?list-type=2`)).status, 403, 'listing');
    await stillThere();
  });

  test('the filer: its UI, listings and the object answer 401 without the JWT, GET, DELETE and PUT alike', async () => {
    const filer = `http://127.0.0.1:${filerPort}`;
    for (const [method, url] of [
      ['GET', `${filer}/`],
      ['GET', `${filer}/buckets/${config.s3.bucket}/`],
      ['GET', `${filer}/buckets/${config.s3.bucket}/${Key}`],
      ['DELETE', `${filer}/buckets/${config.s3.bucket}/${Key}`],
      ['PUT', `${filer}/buckets/${config.s3.bucket}/${Key}`],
    ]) {
      const res = await fetch(url, { method, body: method === 'PUT' ? 'replaced' : undefined });
      assert.equal(res.status, 401, `${method} ${url}`);
      assert.doesNotMatch(await res.text(), new RegExp(`stack-test-${process.pid}`), 'nothing about the model');
    }
    await stillThere();
  });

  test('the volume server: a write with a file id the master hands out, and its UI, answer 401', async () => {
    const assign = await fetch(`http://127.0.0.1:${masterPort}/dir/assign`, { method: 'POST' });
    const { fid, auth } = (await assign.json()) as { fid?: string; auth?: string };
    assert.ok(fid, 'the master assigned a file id');
    assert.equal(auth, undefined, 'but no write token');
    const write = await fetch(`http://127.0.0.1:${volumePort}/${fid}`, { method: 'PUT', body: 'x' });
    assert.equal(write.status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${volumePort}/${fid}`)).status, 401, 'a read');
    assert.equal((await fetch(`http://127.0.0.1:${volumePort}/ui/index.html`)).status, 401);
  });

  /** A gRPC call to the filer (ListEntries of the root): the HTTP/2 status, or the error. */
  function filerGrpc(options: http2.SecureClientSessionOptions & { tls: boolean }): Promise<number | Error> {
    const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${filerPort + grpcOffset}`;
    return new Promise((resolve) => {
      const session = http2.connect(url, options);
      const done = (result: number | Error) => {
        session.destroy();
        resolve(result);
      };
      session.on('error', done);
      const req = session.request({
        ':method': 'POST',
        ':path': '/filer_pb.SeaweedFiler/ListEntries',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.on('response', (headers) => done(Number(headers[':status'])));
      req.on('error', done);
      req.on('close', () => done(new Error(`the stream closed unanswered (code ${req.rstCode})`)));
      session.on('close', () => done(new Error('the connection closed unanswered')));
      req.setTimeout(5000, () => done(new Error('no answer in 5 s')));
      req.end(Buffer.alloc(5)); // an empty message: flag byte and length 0
    });
  }

  test("the components' gRPC: only a client with the stack's certificate gets an answer", async () => {
    const tls = path.join(config.stateDir, 'seaweedfs', 'tls');
    const ca = readFileSync(path.join(tls, 'ca.crt'));
    assert.ok((await filerGrpc({ tls: false })) instanceof Error, 'plain gRPC is not served');
    const noCert = await filerGrpc({ tls: true, ca, servername: 'localhost' });
    assert.ok(noCert instanceof Error, `without a client certificate: ${noCert}`);
    // the same call with the certificate is answered, so the refusals above are the certificate's doing
    const withCert = await filerGrpc({
      tls: true,
      ca,
      servername: 'localhost',
      cert: readFileSync(path.join(tls, 'node.crt')),
      key: readFileSync(path.join(tls, 'node.key')),
    });
    assert.equal(withCert, 200);
  });
});

describe('dev stack: registry', () => {
  const base = config.registry.url;
  const credentials = config.registry.credentials;
  const basic: Record<string, string> = credentials
    ? { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` }
    : {};

  test('/v2/ wants the credentials: 401 without them, 200 with them', async () => {
    assert.ok(credentials, 'the stack gives registry credentials (stack-credentials.env or FERRY_REGISTRY_*)');
    const anonymous = await fetch(`${base}/v2/`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    const wrong = await fetch(`${base}/v2/`, {
      headers: { authorization: `Basic ${Buffer.from(`${credentials.username}:not-it`).toString('base64')}` },
    });
    assert.equal(wrong.status, 401);
    const res = await fetch(`${base}/v2/`, { headers: basic });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  test('a blob upload round-trips and can be deleted; anonymous pushes and pulls are refused', async () => {
    const repo = `ferry-test/stack-${process.pid}`;
    const blob = randomBytes(4096);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    assert.equal((await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' })).status, 401);
    const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: basic });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, base);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      headers: { ...basic, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      body: blob,
    });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get('docker-content-digest'), digest);
    assert.equal((await fetch(`${base}/v2/${repo}/blobs/${digest}`)).status, 401, 'anonymous pull');
    assert.equal((await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })).status, 401);
    const get = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { headers: basic });
    assert.equal(get.status, 200);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(blob));
    const del = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'DELETE', headers: basic });
    assert.equal(del.status, 202, 'delete is enabled');
    const gone = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: basic });
    assert.equal(gone.status, 404);
  });
});

describe('dev stack: temporal', () => {
  test("Ferry's search attributes are registered as Keyword", async () => {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const res = await connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
      const custom = res.customAttributes ?? {};
      for (const name of ['FerryModel', 'FerryModelVersion', 'FerryStage', 'FerryDeployment', 'FerryTarget']) {
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
