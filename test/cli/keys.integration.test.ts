/**
 * `ferry keys` and `ferry audit` as a user runs them, against the services a real `ferry up` starts (auth
 * on by default: FERRY_AUTH is unset; a temp state dir, private ports and task queue) and the dev stack's PostgreSQL: the bootstrap admin
 * key (mode 0600, stored hashed, kept by a second `ferry up`), a key created and printed once that works
 * for its scopes only, listed without its secret, revoked (401 afterwards), both changes in the audit log,
 * and bad input refused in one line with exit code 1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { applyMigrations } from '../../infra/migrate';
import { generateApiKey, hashApiKey, looksLikeApiKey } from '../../lib/auth/apiKey';
import { type AuditEntry, AuditLog } from '../../lib/auth/audit';
import type { ApiKeyRow } from '../../lib/auth/keyStore';
import { ModelOwnership } from '../../lib/auth/modelOwnership';
import { loadConfig } from '../../lib/config';
import { closePools, getPool } from '../../lib/db/pool';
import { deploymentIdFor } from '../../workflows/types';
import { eventually, freePort } from '../helpers/ferryHarness';

const exec = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');
const config = loadConfig();
const run = Date.now().toString(36);
const project = `keys-${run}`;
const otherProject = `keys-${run}-b`;
const keyName = `ci-${run}`;

let tmpDir: string;
let stateDir: string;
let apiUrl: string;
let env: NodeJS.ProcessEnv;
/** Rows of every key this file made, revoked at the end so none outlives it in the shared database. */
const madeKeyIds: number[] = [];

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function ferry(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await exec(ferryBin, args, { env: { ...env, ...extraEnv }, timeout: 150_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

/** A refusal: exit code 1 and exactly one line on stderr, `ferry: <why>`. */
async function refused(args: string[], message: RegExp, extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await ferry(args, extraEnv);
  assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}${r.err}`);
  const line = r.err.trim();
  assert.ok(!line.includes('\n'), `one line: ${line}`);
  assert.match(line, /^ferry: /);
  assert.match(line, message);
  return line;
}

async function apiStatus(urlPath: string, key?: string, method = 'GET'): Promise<number> {
  const res = await fetch(`${apiUrl}${urlPath}`, {
    method,
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  await res.arrayBuffer();
  return res.status;
}

async function rowOfKey(key: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await getPool(config.postgres.url).query('SELECT * FROM api_keys WHERE key_sha256 = $1', [
    hashApiKey(key),
  ]);
  return rows[0];
}

before(async () => {
  await applyMigrations(config.postgres.url);
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-test-keys-'));
  stateDir = path.join(tmpDir, 'state');
  const [apiPort, gatewayPort] = [await freePort(), await freePort()];
  apiUrl = `http://127.0.0.1:${apiPort}`;
  env = {
    ...process.env,
    FERRY_STATE_DIR: stateDir,
    FERRY_API_PORT: String(apiPort),
    FERRY_API_URL: apiUrl,
    FERRY_GATEWAY_PORT: String(gatewayPort),
    FERRY_GATEWAY_URL: `http://127.0.0.1:${gatewayPort}`,
    FERRY_TASK_QUEUE: `ferry-test-keys-${run}`,
    FERRY_WORKER_METRICS_PORT: '0',
  };
  // Nothing turns auth on here: it is on by default, and the bootstrap key is what the CLI uses.
  delete env.FERRY_API_KEY;
  delete env.FERRY_AUTH;
});

after(async () => {
  if (env) await ferry(['down']);
  if (madeKeyIds.length) {
    await getPool(config.postgres.url).query(
      'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ANY($1)',
      [madeKeyIds],
    );
  }
  await closePools();
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
});

describe('ferry keys and ferry audit', () => {
  let adminKey: string;
  let adminKeyName: string;
  let key: string;

  it('the first ferry up makes the admin key (0600, stored hashed), the API accepts it, a second up keeps it', async () => {
    const up = await ferry(['up']);
    assert.equal(up.code, 0, up.out + up.err);
    const keyFile = path.join(stateDir, 'admin.key');
    assert.ok(up.out.includes(`ferry admin key: created ${keyFile} (mode 0600)`), up.out);
    assert.match(up.out, /ferry api: started/);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    adminKey = (await readFile(keyFile, 'utf8')).trim();
    assert.ok(looksLikeApiKey(adminKey));

    const row = await rowOfKey(adminKey);
    assert.ok(row, 'the key is in PostgreSQL, by its sha256');
    madeKeyIds.push(Number(row.id));
    adminKeyName = row.name as string;
    assert.deepEqual(row.scopes, ['admin']);
    assert.equal(row.project, 'default');
    assert.ok(!JSON.stringify(row).includes(adminKey), 'the clear key is not stored');

    assert.equal(await apiStatus('/api/keys'), 401, 'auth is on: no key, no answer');
    assert.equal(await apiStatus('/api/keys', adminKey), 200, 'the API that ferry up started accepts the key');
    // The gateway that ferry up started asks for a key too.
    const gateway = env.FERRY_GATEWAY_URL;
    const keyless = await fetch(`${gateway}/_ferry/deployments`);
    assert.equal(keyless.status, 401, await keyless.text());
    const unknownKey = await fetch(`${gateway}/_ferry/deployments`, {
      headers: { authorization: `Bearer ${generateApiKey()}` },
    });
    assert.equal(unknownKey.status, 401, await unknownKey.text());
    const keyed = await fetch(`${gateway}/_ferry/deployments`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(keyed.status, 200, await keyed.text());
    // `ferry list` reaches Temporal and the gateway with the key file, without FERRY_API_KEY.
    const list = await ferry(['list']);
    assert.equal(list.code, 0, list.out + list.err);

    const again = await ferry(['up']);
    assert.equal(again.code, 0, again.out + again.err);
    assert.ok(again.out.includes(`ferry admin key: ${keyFile} (kept)`), again.out);
    assert.match(again.out, /ferry api: already running/);
    assert.equal((await readFile(keyFile, 'utf8')).trim(), adminKey);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);

    // `ferry keys bootstrap` is that first step alone (docker compose's migrate step runs it).
    const kept = await ferry(['keys', 'bootstrap']);
    assert.equal(kept.code, 0, kept.out + kept.err);
    assert.equal(kept.out.trim(), `ferry admin key: ${keyFile} (kept)`);
    const elsewhere = path.join(tmpDir, 'compose-state');
    const made = await ferry(['keys', 'bootstrap'], { FERRY_STATE_DIR: elsewhere });
    assert.equal(made.code, 0, made.out + made.err);
    const otherKey = (await readFile(path.join(elsewhere, 'admin.key'), 'utf8')).trim();
    assert.ok(looksLikeApiKey(otherKey) && otherKey !== adminKey);
    assert.equal((await stat(path.join(elsewhere, 'admin.key'))).mode & 0o777, 0o600);
    madeKeyIds.push(Number((await rowOfKey(otherKey))!.id));
    assert.equal(await apiStatus('/api/keys', otherKey), 200, 'the key it made is an admin key');
  });

  it('keys create prints the key once; it works for its scopes and is refused (403) for another', async () => {
    const made = await ferry(['keys', 'create', '--project', project, '--scope', 'deploy,read', '--name', keyName]);
    assert.equal(made.code, 0, made.out + made.err);
    key = made.out.trim();
    assert.ok(looksLikeApiKey(key), `stdout is the key alone: ${made.out}`);
    assert.ok(made.err.includes(`Created key ${project}/${keyName}`), made.err);
    assert.match(made.err, /scopes deploy,read/);
    assert.match(made.err, /will not be shown again/);
    madeKeyIds.push(Number((await rowOfKey(key))!.id));

    assert.equal(await apiStatus('/api/audit', key), 200, 'read');
    assert.equal(await apiStatus('/api/keys', key), 403, 'admin');
    assert.equal(await apiStatus('/api/deployments/anything/undeploy', key, 'POST'), 403, 'operate');

    // FERRY_API_KEY overrides the admin key file: the same commands now run as the new key.
    const asKey = { FERRY_API_KEY: key };
    const audit = await ferry(['audit', '--limit', '5'], asKey);
    assert.equal(audit.code, 0, audit.out + audit.err);
    await refused(
      ['keys', 'list'],
      new RegExp(`not allowed \\(403\\): this key \\(${keyName}\\) lacks the "admin" scope`),
      asKey,
    );
  });

  it('keys list shows the key, its scopes and last use, never its secret', async () => {
    const table = await ferry(['keys', 'list', '--project', project]);
    assert.equal(table.code, 0, table.out + table.err);
    const lines = table.out.trim().split('\n');
    assert.match(lines[0], /^ID\s+NAME\s+PROJECT\s+SCOPES\s+PREFIX\s+CREATED \(UTC\)\s+LAST USED\s+REVOKED$/);
    assert.equal(lines.length, 2, table.out);
    assert.match(
      lines[1],
      new RegExp(
        `^\\d+\\s+${keyName}\\s+${project}\\s+deploy,read\\s+${key.slice(0, 12)}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+\\d{4}-\\d\\d-\\d\\d \\S+\\s+-$`,
      ),
      'used a moment ago, not revoked',
    );
    assert.ok(!table.out.includes(key));

    const json = await ferry(['keys', 'list', '--project', project, '--json']);
    assert.equal(json.code, 0, json.err);
    const rows = JSON.parse(json.out) as ApiKeyRow[];
    assert.deepEqual(
      rows.map((r) => [r.name, r.project, r.scopes, r.revokedAt]),
      [[keyName, project, ['deploy', 'read'], null]],
    );
    assert.ok(!json.out.includes(key) && !json.out.includes(hashApiKey(key)), 'neither the key nor its hash');

    const all = await ferry(['keys', 'list', '--json']);
    assert.ok((JSON.parse(all.out) as ApiKeyRow[]).some((r) => r.name === adminKeyName && r.project === 'default'));
  });

  it('keys revoke by name: the key gets 401 afterwards, and the listing says when it was revoked', async () => {
    const revoked = await ferry(['keys', 'revoke', keyName]);
    assert.equal(revoked.code, 0, revoked.out + revoked.err);
    assert.match(revoked.out, new RegExp(`^Revoked key ${project}/${keyName} \\(id \\d+, fry_`));
    // The API caches a key's check for a few seconds; the revocation is seen within that.
    await eventually('the revoked key to be refused', async () => (await apiStatus('/api/audit', key)) === 401, 10_000);
    await refused(['audit'], /the key in FERRY_API_KEY was refused \(401\): it is unknown or revoked/, {
      FERRY_API_KEY: key,
    });
    const rows = JSON.parse((await ferry(['keys', 'list', '--project', project, '--json'])).out) as ApiKeyRow[];
    assert.ok(rows[0].revokedAt);

    // Key names are unique per project only: a name two projects use must be given with its project.
    for (const p of [project, otherProject]) {
      const made = await ferry(['keys', 'create', '--project', p, '--scope', 'read', '--name', 'twin', '--json']);
      assert.equal(made.code, 0, made.err);
      madeKeyIds.push((JSON.parse(made.out) as { row: ApiKeyRow }).row.id);
    }
    await refused(
      ['keys', 'revoke', 'twin'],
      /several keys are named "twin" \(projects .*\); give project\/name or the id/,
    );
    const byProject = await ferry(['keys', 'revoke', `${otherProject}/twin`]);
    assert.equal(byProject.code, 0, byProject.err);
    assert.match(byProject.out, new RegExp(`Revoked key ${otherProject}/twin`));
  });

  it('audit shows the create and the revoke, newest first, with the key name and project and the address', async () => {
    const json = await ferry(['audit', '--json', '--limit', '1000']);
    assert.equal(json.code, 0, json.err);
    const entries = JSON.parse(json.out) as AuditEntry[];
    assert.ok(
      entries.every((e, i) => i === 0 || e.id < entries[i - 1].id),
      'newest first',
    );
    const ours = entries.filter((e) => e.detail.project === project && e.detail.name === keyName);
    assert.deepEqual(
      ours.map((e) => [e.action, e.project, e.keyName]),
      [
        ['key-revoked', 'default', adminKeyName],
        ['key-created', 'default', adminKeyName],
      ],
    );
    assert.match(ours[0].source ?? '', /127\.0\.0\.1/);
    assert.deepEqual(ours[1].detail.scopes, ['deploy', 'read']);

    const text = await ferry(['audit', '--limit', '1000']);
    assert.equal(text.code, 0, text.err);
    const lines = text.out.split('\n');
    assert.match(lines[0], /^WHEN \(UTC\)\s+WHO\s+ACTION\s+DEPLOYMENT\s+FROM\s+DETAIL$/);
    const revokedAt = lines.findIndex((l) => l.includes(`name=${keyName}`) && l.includes('key-revoked'));
    const createdAt = lines.findIndex((l) => l.includes(`name=${keyName}`) && l.includes('key-created'));
    assert.ok(revokedAt > 0 && createdAt > revokedAt, text.out);
    assert.match(
      lines[createdAt],
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+default/${adminKeyName}\\s+key-created\\s+-\\s+\\S*127\\.0\\.0\\.1\\s+\\S`,
      ),
    );
    // The details, in the order the database keeps them.
    for (const item of [`project=${project}`, `name=${keyName}`, 'scopes=deploy,read', `prefix=${key.slice(0, 12)}`])
      assert.ok(lines[createdAt].split(/\s+/).includes(item), `${item} in: ${lines[createdAt]}`);

    const none = await ferry(['audit', '--deployment', `nothing-${run}`]);
    assert.equal(none.code, 0, none.err);
    assert.equal(none.out.trim(), `No audit entries for deployment nothing-${run}.`);
  });

  it('audit --deployment takes model:version; a project key sees its own project only', async () => {
    // An entry as the deploy route writes it, for a model of the project (no pipeline needed for this).
    const pool = getPool(config.postgres.url);
    const model = `audited-${run}`;
    await new ModelOwnership(pool).claim(model, project);
    const deploymentId = deploymentIdFor(model, 'v1');
    await new AuditLog(pool).record({
      actor: { project, keyName: 'deployer' },
      action: 'deploy',
      deploymentId,
      detail: { model, version: 'v1', mode: 'one-click' },
      source: '127.0.0.1',
    });

    const byRef = await ferry(['audit', '--deployment', `${model}:v1`, '--json']);
    assert.equal(byRef.code, 0, byRef.err);
    assert.deepEqual(
      (JSON.parse(byRef.out) as AuditEntry[]).map((e) => [e.action, e.deploymentId, e.project, e.keyName]),
      [['deploy', deploymentId, project, 'deployer']],
    );
    const byId = await ferry(['audit', '--deployment', deploymentId]);
    assert.match(
      byId.out.split('\n')[1],
      new RegExp(`${project}/deployer\\s+deploy\\s+${deploymentId}\\s+127\\.0\\.0\\.1\\s`),
    );

    const reader = await ferry(['keys', 'create', '--project', project, '--scope', 'read', '--name', 'reader']);
    assert.equal(reader.code, 0, reader.err);
    const readerKey = reader.out.trim();
    madeKeyIds.push(Number((await rowOfKey(readerKey))!.id));
    const own = await ferry(['audit', '--json', '--limit', '1000'], { FERRY_API_KEY: readerKey });
    assert.equal(own.code, 0, own.err);
    const entries = JSON.parse(own.out) as AuditEntry[];
    assert.ok(entries.some((e) => e.deploymentId === deploymentId));
    assert.ok(
      entries.every((e) => e.project === project),
      "the admin's key-created entries (project default) are not shown to a project key",
    );
  });

  it('refuses bad input, unknown keys, a missing API and missing or bad keys in one line each', async () => {
    await refused(
      ['keys', 'create', '--project', project, '--scope', 'deploy,sudo'],
      /unknown scope "sudo"; choose from read, deploy, approve, operate, infer, admin/,
    );
    await refused(
      ['keys', 'create', '--project', 'Bad/Project', '--scope', 'read'],
      /invalid project name "Bad\/Project"/,
    );
    await refused(
      ['keys', 'create', '--project', project, '--scope', 'read', '--name', keyName],
      new RegExp(`project ${project} already has a key named "${keyName}"`),
    );
    await refused(['keys', 'revoke', `no-such-key-${run}`], new RegExp(`no key "no-such-key-${run}"`));
    await refused(['keys', 'revoke', '999999999999'], /no key "999999999999"/);
    await refused(['audit', '--limit', '5000'], /--limit must be at most 1000, got "5000"/);

    const closed = `http://127.0.0.1:${await freePort()}`;
    await refused(
      ['keys', 'list'],
      /cannot reach Ferry's API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): start it with `ferry up`/,
      {
        FERRY_API_URL: closed,
      },
    );
    // No FERRY_API_KEY and a state dir without admin.key: the API asks for a key, and the CLI says where to get one.
    const emptyState = path.join(tmpDir, 'empty-state');
    await refused(['keys', 'list'], /Ferry's API wants a key \(401\): set FERRY_API_KEY, or run `ferry up`/, {
      FERRY_STATE_DIR: emptyState,
    });
    await refused(['keys', 'list'], /the key in FERRY_API_KEY was refused \(401\)/, {
      FERRY_API_KEY: generateApiKey(),
    });
  });
});
