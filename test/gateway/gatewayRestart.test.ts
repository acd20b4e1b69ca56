/**
 * A gateway crash (SIGKILL) does not take the replicas down; the next gateway on the same state dir
 * adopts them (same pids), keeps routing, supervises them, and hibernates deployments whose
 * replicas died meanwhile (the next request wakes them).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { freePort, isSameProcessAlive } from '../../lib/gateway/replicaProcess';
import {
  assertAllDead,
  control,
  directOutput,
  eventually,
  inferThrough,
  isAlive,
  MLP_V1,
  modelDirWith,
  tempDir,
} from './gatewayFixture';

const repoRoot = path.resolve(__dirname, '../..');
const gateways: ChildProcess[] = [];
let dir: string;

async function startGatewayProcess(port: number, stateDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'gatewayProcess.ts')], {
    cwd: repoRoot,
    env: { ...process.env, GATEWAY_PORT: String(port), GATEWAY_STATE_DIR: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gateways.push(child);
  let output = '';
  child.stderr!.setEncoding('utf8').on('data', (c) => (output += c));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c) => {
      output += c;
      const m = /gateway ready at (\S+)/.exec(output);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}:\n${output}`)));
  });
  return { child, url };
}

async function crash(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

after(async () => {
  for (const g of gateways) if (g.exitCode === null && g.signalCode === null) g.kill('SIGKILL');
  // If the test failed half-way, replicas recorded by the last gateway are still running: stop them.
  try {
    const state = JSON.parse(readFileSync(path.join(dir, 'state', 'gateway', 'deployments.json'), 'utf8'));
    for (const d of state.deployments)
      for (const r of d.live) if (isSameProcessAlive(r)) process.kill(-r.pid, 'SIGKILL');
  } catch {
    /* no state file, or nothing left running */
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a restarted gateway adopts live replicas, supervises them, and hibernates dead ones', async () => {
  dir = await tempDir('gateway-restart');
  const stateDir = path.join(dir, 'state');
  const modelDir = await modelDirWith(MLP_V1, dir);
  const expected = await directOutput(MLP_V1);
  const port = await freePort();

  // 1. deploy on gateway A, then crash A
  const a = await startGatewayProcess(port, stateDir);
  const put = await control(a.url, 'PUT', '/deployments/survivor', { modelDir, replicas: 2, model: 'mlp' });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  const pids: number[] = put.json.replicas.map((r: any) => r.pid);
  assert.equal((await inferThrough(put.json.endpoint)).status, 200);
  await crash(a.child);
  assert.ok(pids.every(isAlive), 'replicas outlive a gateway crash');

  // 2. gateway B adopts the same pids and routes to them
  const b = await startGatewayProcess(port, stateDir);
  const adopted = (await control(b.url, 'GET', '/deployments/survivor')).json;
  assert.equal(adopted.state, 'running');
  assert.deepEqual(adopted.replicas.map((r: any) => r.pid).sort(), [...pids].sort());
  const res = await inferThrough(adopted.endpoint);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.outputs[0].data, expected);
  assert.ok(pids.includes(Number(res.replica)));

  // 3. an adopted replica (not B's child: no exit event) that dies is noticed and replaced
  process.kill(pids[0], 'SIGKILL');
  const healed = await eventually('the adopted replica to be replaced', async () => {
    const s = (await control(b.url, 'GET', '/deployments/survivor')).json;
    return s.replicas.length === 2 && s.replicas.every((r: any) => r.ready && r.pid !== pids[0]) ? s : undefined;
  });
  assert.ok(healed.restarts >= 1);
  const livePids: number[] = healed.replicas.map((r: any) => r.pid);

  // 4. crash B, and the replicas die while no gateway runs: gateway C hibernates, a request wakes it
  await crash(b.child);
  for (const pid of livePids) process.kill(pid, 'SIGKILL');
  await assertAllDead(livePids, 'replicas killed during the outage');
  const c = await startGatewayProcess(port, stateDir);
  const restored = (await control(c.url, 'GET', '/deployments/survivor')).json;
  assert.equal(restored.state, 'hibernated');
  assert.deepEqual(restored.replicas, []);
  const woken = await inferThrough(restored.endpoint);
  assert.equal(woken.status, 200);
  assert.deepEqual(woken.json.outputs[0].data, expected);
  const after = (await control(c.url, 'GET', '/deployments/survivor')).json;
  assert.equal(after.state, 'running');
  assert.equal(after.coldStarts, restored.coldStarts + 1);

  // 5. no orphans: DELETE stops them, and a graceful gateway stop leaves nothing behind
  const finalPids: number[] = after.replicas.map((r: any) => r.pid);
  assert.equal((await control(c.url, 'DELETE', '/deployments/survivor')).status, 204);
  await assertAllDead(finalPids, 'delete');
  const stopped = once(c.child, 'exit');
  c.child.kill('SIGTERM');
  await stopped;
});
