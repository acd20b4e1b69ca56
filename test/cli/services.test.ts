/**
 * `ferry up`'s services: started once, found running the next time, and restarted when the code they
 * run has changed since they started (so `ferry up` after a `git pull` does not keep old code serving).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { codeFingerprint, isAlive, startService, stopService } from '../../client/services';
import { loadConfig } from '../../lib/config';
import { freePort } from '../../lib/gateway/replicaProcess';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ferry-services-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the code fingerprint follows the sources (not node_modules or dot dirs)', () => {
  const repo = path.join(tmp, 'repo');
  mkdirSync(path.join(repo, 'lib', 'node_modules'), { recursive: true });
  mkdirSync(path.join(repo, 'lib', '.cache'), { recursive: true });
  writeFileSync(path.join(repo, 'lib', 'a.ts'), 'export const a = 1;\n');
  const before = codeFingerprint(repo);
  writeFileSync(path.join(repo, 'lib', 'node_modules', 'x.js'), 'x');
  writeFileSync(path.join(repo, 'lib', '.cache', 'y'), 'y');
  assert.equal(codeFingerprint(repo), before, 'installed packages and caches are not the code');
  utimesSync(path.join(repo, 'lib', 'a.ts'), new Date(), new Date(Date.now() + 5000));
  assert.notEqual(codeFingerprint(repo), before, 'an edited source changes it');
  const edited = codeFingerprint(repo);
  writeFileSync(path.join(repo, 'lib', 'b.ts'), '');
  assert.notEqual(codeFingerprint(repo), edited, 'a new source changes it');
});

test('a running service is kept while its code is the same, and restarted when it changed', {
  timeout: 120_000,
}, async () => {
  process.env.FERRY_STATE_DIR = path.join(tmp, 'state');
  process.env.FERRY_GATEWAY_PORT = String(await freePort());
  const config = loadConfig();
  try {
    const first = await startService(config, 'gateway');
    assert.equal(first.started, true);
    const again = await startService(config, 'gateway');
    assert.deepEqual(again, { pid: first.pid, started: false }, 'same code: the running gateway is kept');

    // As if the gateway had been started before a `git pull`: its recorded code is not today's.
    writeFileSync(path.join(config.stateDir, 'ferry', 'gateway.code'), 'older-code');
    const restarted = await startService(config, 'gateway');
    assert.equal(restarted.started, true);
    assert.equal(restarted.restartedBecause, 'its code changed since it started');
    assert.notEqual(restarted.pid, first.pid);
    assert.equal(isAlive(first.pid), false, 'the old gateway is stopped');
    assert.equal((await fetch(`${config.gateway.url}/_ferry/health`)).status, 200, 'the new one answers');
  } finally {
    await stopService(config, 'gateway');
    delete process.env.FERRY_STATE_DIR;
    delete process.env.FERRY_GATEWAY_PORT;
  }
});
