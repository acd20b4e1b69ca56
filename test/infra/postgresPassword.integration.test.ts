/**
 * The Postgres role's password is made per install: a private PostgreSQL started by `stack.sh start
 * postgres` (its own state dir and port, beside the shared stack) takes the password generated into its
 * credentials file, lib/config.ts connects with it, and the old fixed one is refused. A stack first started
 * before that (a credentials file without the line, a role with the legacy password) is moved to a
 * generated password by its next `start`, while the status line shows no password.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { type FerryConfig, readStackDefaults, STACK_CREDENTIALS_FILE } from '../../lib/config';
import { freePort } from '../../lib/gateway/replicaProcess';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');
const defaults = readStackDefaults();
const scratch = mkdtempSync(path.join(tmpdir(), 'ferry-pg-password-'));
const stateDir = path.join(scratch, 'state');
let env: NodeJS.ProcessEnv;

function stack(...args: string[]) {
  return run('bash', [path.join(repoRoot, 'infra/stack.sh'), ...args], { env, timeout: 180_000 });
}

async function configUrl(): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '-e', "process.stdout.write(JSON.stringify(require('./lib/config').loadConfig()))"],
    { cwd: repoRoot, env },
  );
  return (JSON.parse(stdout) as FerryConfig).postgres.url;
}

/** Connects with the role and password given; the error code when refused. */
async function login(password: string): Promise<string> {
  const url = new URL(await configUrl());
  url.password = encodeURIComponent(password);
  const client = new Client({ connectionString: url.toString(), connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

function fileLines(): Record<string, string> {
  const text = readFileSync(path.join(stateDir, STACK_CREDENTIALS_FILE), 'utf8');
  return Object.fromEntries([...text.matchAll(/^(FERRY_[A-Z_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
}

before(async () => {
  chmodSync(scratch, 0o755); // the postgres user must reach its data dir
  env = { PATH: process.env.PATH, HOME: process.env.HOME, FERRY_STATE_DIR: stateDir };
  env.FERRY_PG_PORT = String(await freePort());
  // Only the postgres service is started; the others' ports just must not clash in the plan.
  env.FERRY_S3_PORT = String(await freePort());
});
after(async () => {
  await stack('stop', 'postgres').catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
});

test('a new stack gives the role a generated password; the old fixed one is refused', async () => {
  const { stdout } = await stack('start', 'postgres');
  const password = fileLines().FERRY_PG_PASSWORD;
  assert.match(password ?? '', /^[0-9a-f]{48}$/, 'generated into the credentials file');
  assert.ok(!stdout.includes(password), 'the start and status output never shows it');
  assert.equal(decodeURIComponent(new URL(await configUrl()).password), password, 'lib/config.ts uses it');
  assert.equal(await login(password), 'ok');
  assert.equal(await login(defaults.FERRY_PG_LEGACY_PASSWORD), '28P01', 'the fixed password no longer logs in');
});

test('a stack started before keeps working, and its next start moves it to a generated password', async () => {
  // As a stack made by the earlier stack.sh: no line in the file, the role with the fixed password.
  const legacy = defaults.FERRY_PG_LEGACY_PASSWORD;
  const before = fileLines();
  const { FERRY_PG_PASSWORD: _dropped, ...others } = before;
  writeFileSync(
    path.join(stateDir, STACK_CREDENTIALS_FILE),
    `${Object.entries(others)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  const admin = new Client({
    connectionString: await configUrl().then((u) => u.replace(`:${legacy}@`, `:${before.FERRY_PG_PASSWORD}@`)),
  });
  await admin.connect();
  await admin.query(`ALTER ROLE ${defaults.FERRY_PG_USER} PASSWORD '${legacy}'`);
  await admin.end();
  assert.equal(decodeURIComponent(new URL(await configUrl()).password), legacy, 'until then, the password it has');
  assert.equal(await login(legacy), 'ok');

  await stack('start', 'postgres');
  const moved = fileLines().FERRY_PG_PASSWORD;
  assert.match(moved ?? '', /^[0-9a-f]{48}$/);
  assert.notEqual(moved, before.FERRY_PG_PASSWORD);
  assert.equal(fileLines().FERRY_S3_SECRET_KEY, before.FERRY_S3_SECRET_KEY, 'the other credentials are kept');
  assert.equal(await login(moved), 'ok');
  assert.equal(await login(legacy), '28P01');
});
