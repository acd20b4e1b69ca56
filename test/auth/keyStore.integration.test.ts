/** Keys, projects and the audit log against the dev stack's real PostgreSQL (migrations applied). */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyMigrations } from '../../infra/migrate';
import { AuditLog } from '../../lib/auth/audit';
import { adminKeyPath, ensureBootstrapAdminKey, readLocalAdminKey } from '../../lib/auth/bootstrapKey';
import { CachedKeyVerifier, KeyNameTakenError, KeyStore, UnknownKeyError } from '../../lib/auth/keyStore';
import { InvalidScopeError } from '../../lib/auth/scopes';
import { loadConfig } from '../../lib/config';
import { closePools, getPool } from '../../lib/db/pool';
import { InvalidNameError } from '../../lib/names';

const config = loadConfig();
const run = Date.now().toString(36);
const project = `t-${run}`;
let keys: KeyStore;
let audit: AuditLog;

before(async () => {
  await applyMigrations(config.postgres.url);
  keys = new KeyStore(getPool(config.postgres.url));
  audit = new AuditLog(getPool(config.postgres.url));
});
after(closePools);

describe('KeyStore', () => {
  it('makes a key shown once, stores only its hash, verifies it, and refuses it after revocation', async () => {
    const { key, row } = await keys.createKey({ project, name: 'ci', scopes: ['deploy', 'read'] });
    assert.deepEqual(row.scopes, ['deploy', 'read']);
    assert.equal(row.prefix, key.slice(0, 12));
    const stored = await getPool(config.postgres.url).query('SELECT * FROM api_keys WHERE id = $1', [row.id]);
    assert.ok(!JSON.stringify(stored.rows[0]).includes(key), 'the clear key is not in the row');

    const p = await keys.verify(key);
    assert.deepEqual(p, { keyId: row.id, keyName: 'ci', project, scopes: ['deploy', 'read'] });
    // One character changed (to another: a key that ends in "A" already would still be itself).
    const altered = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    assert.equal(await keys.verify(altered), undefined);
    assert.equal(await keys.verify('not-a-key'), undefined);

    const revoked = await keys.revokeKey(`${project}/ci`);
    assert.ok(revoked.revokedAt);
    assert.equal(await keys.verify(key), undefined);
    assert.ok((await keys.revokeKey(String(row.id))).revokedAt, 'revoking twice is fine');
  });

  it('refuses a duplicate key name, a bad scope, a bad project name, and an unknown key', async () => {
    await keys.createKey({ project, name: 'dup', scopes: ['read'] });
    await assert.rejects(keys.createKey({ project, name: 'dup', scopes: ['read'] }), KeyNameTakenError);
    await assert.rejects(keys.createKey({ project, name: 'x', scopes: ['sudo'] }), InvalidScopeError);
    await assert.rejects(keys.createKey({ project: '../etc', name: 'x', scopes: ['read'] }), InvalidNameError);
    await assert.rejects(keys.revokeKey(`${project}/nope`), UnknownKeyError);
    const listed = await keys.listKeys(project);
    assert.ok(listed.every((k) => k.project === project));
    assert.ok(listed.some((k) => k.name === 'dup'));
  });

  it('caches verification for the hot path and forgets a revoked key after the TTL', async () => {
    const { key } = await keys.createKey({ project, name: 'gw', scopes: ['infer'] });
    let calls = 0;
    const cached = new CachedKeyVerifier((k) => {
      calls++;
      return keys.verify(k);
    }, 1000);
    assert.equal((await cached.verify(key, 0))?.project, project);
    assert.equal((await cached.verify(key, 500))?.project, project);
    assert.equal(calls, 1);
    await keys.revokeKey(`${project}/gw`);
    assert.equal(await cached.verify(key, 1500), undefined);
    assert.equal(calls, 2);
  });
});

describe('bootstrap admin key', () => {
  it('is made once in <stateDir>/admin.key with mode 0600, and replaced when revoked', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bootstrap-'));
    try {
      const first = await ensureBootstrapAdminKey(dir, keys);
      assert.equal(first.created, true);
      assert.equal((await stat(adminKeyPath(dir))).mode & 0o777, 0o600);
      const key = await readLocalAdminKey(dir);
      assert.deepEqual((await keys.verify(key!))?.scopes, ['admin']);
      assert.equal((await ensureBootstrapAdminKey(dir, keys)).created, false);
      assert.equal(await readLocalAdminKey(dir), key);

      const row = await keys.findKey(key!);
      await keys.revokeKey(String(row!.id));
      assert.equal((await ensureBootstrapAdminKey(dir, keys)).created, true);
      assert.notEqual(await readLocalAdminKey(dir), key);

      await writeFile(adminKeyPath(dir), 'garbage\n');
      assert.equal(await readLocalAdminKey(dir), undefined);
      assert.equal((await readFile(adminKeyPath(dir), 'utf8')).trim(), 'garbage');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('AuditLog', () => {
  it('records who did what from where, and shows a project only its own entries', async () => {
    const other = `${project}-b`;
    await audit.record({
      actor: { project, keyId: 1, keyName: 'ci' },
      action: 'deploy',
      deploymentId: `m-${run}`,
      detail: { mode: 'one-click' },
      source: '127.0.0.1',
    });
    await audit.record({ actor: { project: other, keyName: 'ops' }, action: 'undeploy', deploymentId: `n-${run}` });
    const mine = await audit.list({ projects: [project] });
    assert.ok(mine.length >= 1 && mine.every((e) => e.project === project));
    assert.deepEqual(
      { action: mine[0].action, key: mine[0].keyName, source: mine[0].source, detail: mine[0].detail },
      { action: 'deploy', key: 'ci', source: '127.0.0.1', detail: { mode: 'one-click' } },
    );
    const byDeployment = await audit.list({ projects: 'all', deploymentId: `n-${run}` });
    assert.deepEqual(
      byDeployment.map((e) => [e.project, e.action]),
      [[other, 'undeploy']],
    );
  });
});
