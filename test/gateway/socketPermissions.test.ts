/**
 * Replicas are reachable only through the gateway: their Unix domain sockets live in a directory only the
 * gateway's user may enter (0700, also when it was there already with a wider mode), and each socket is
 * 0600 once the replica is ready.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { SOCKET_DIR_MODE, SOCKET_MODE } from '../../lib/gateway/replicaProcess';
import { control, inferThrough, MLP_V1, modelDirWith, startTestGateway, tempDir } from './gatewayFixture';

test('replica sockets: directory 0700 (a wider one is narrowed), each socket 0600, inference still answers', async () => {
  const dir = await tempDir('gw-sockets');
  const socketDir = path.join(dir, 'state', 'gateway', 'sockets');
  // As an older gateway, or a loose umask, may have left it.
  mkdirSync(socketDir, { recursive: true });
  chmodSync(socketDir, 0o755);
  const fx = await startTestGateway('gw-sockets', { standby: false, stateDir: path.join(dir, 'state') });
  try {
    const modelDir = await modelDirWith(MLP_V1, fx.dir);
    const put = await control(fx.gateway.url, 'PUT', '/deployments/sock', { model: 'mlp', replicas: 2, modelDir });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    const state = JSON.parse(readFileSync(path.join(dir, 'state', 'gateway', 'deployments.json'), 'utf8'));
    const sockets: string[] = state.deployments[0].live.map((r: { socketPath?: string }) => r.socketPath);
    assert.equal(sockets.length, 2);
    for (const socket of sockets) {
      assert.equal(path.dirname(socket), socketDir);
      const st = statSync(socket);
      assert.ok(st.isSocket(), socket);
      assert.equal((st.mode & 0o777).toString(8), SOCKET_MODE.toString(8), `${socket} mode`);
    }
    assert.equal((statSync(socketDir).mode & 0o777).toString(8), SOCKET_DIR_MODE.toString(8), 'socket dir mode');
    assert.equal((await inferThrough(put.json.endpoint)).status, 200);
  } finally {
    await fx.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
