/**
 * What makes a cold start fast, and that it changes nothing else: replicas on Unix domain sockets in
 * the state dir (gone with their replica), the standby process that loads the server in advance and
 * becomes the next replica, metrics (cold-start ones included) with the OpenTelemetry
 * SDK deferred, and a standby that loaded another program not being used for a plan it cannot serve.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LaunchPlan, launchPlanForModelDir } from '../../lib/gateway/launchPlan';
import { readProcStartTicks, spawnReplica, standbyBootEnv, waitUntilReady } from '../../lib/gateway/replicaProcess';
import { StandbyProcess } from '../../lib/gateway/standbyProcess';
import {
  assertAllDead,
  control,
  directOutput,
  eventually,
  inferThrough,
  isAlive,
  MLP_V1,
  modelDirWith,
  startTestGateway,
  tempDir,
} from './gatewayFixture';

function logsIn(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort()
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('');
}

describe('cold start', () => {
  test('a wake uses the standby process that loaded the server in advance; socket and metrics work', {
    timeout: 90_000,
  }, async () => {
    const fx = await startTestGateway('cold-start');
    try {
      const stateDir = path.join(fx.dir, 'state');
      const standbyLogs = path.join(stateDir, 'gateway', 'logs', '_standby');
      const socketDir = path.join(stateDir, 'gateway', 'sockets');
      const modelDir = await modelDirWith(MLP_V1, fx.dir);
      const expected = await directOutput(MLP_V1);
      const put = await control(fx.gateway.url, 'PUT', '/deployments/cold', { model: 'mlp', replicas: 1, modelDir });
      assert.equal(put.status, 200, JSON.stringify(put.json));
      const first = put.json.replicas[0];
      assert.equal(first.port, 0, 'the replica listens on a Unix domain socket');
      const sockets = readdirSync(socketDir).filter((f) => f.endsWith('.sock'));
      assert.equal(sockets.length, 1);

      // Having started the server once, the gateway keeps a standby process that loaded it in advance.
      await eventually(
        'a standby process that loaded the server in advance',
        () => /loaded .*server-.*\.js in advance \(code cache/.test(logsIn(standbyLogs)),
        30_000,
      );

      const hibernated = await control(fx.gateway.url, 'POST', '/deployments/cold/hibernate');
      assert.equal(hibernated.json.state, 'hibernated');
      await assertAllDead([first.pid], 'hibernate');
      await eventually(
        'the socket file to go with its replica',
        () => readdirSync(socketDir).filter((f) => f.endsWith('.sock')).length === 0,
        5000,
      );

      const held = await inferThrough(put.json.endpoint);
      assert.equal(held.status, 200, JSON.stringify(held.json));
      assert.deepEqual(held.json.outputs[0].data, expected);
      const woke = (await control(fx.gateway.url, 'GET', '/deployments/cold')).json;
      assert.equal(woke.coldStarts, 1);
      assert.equal(String(woke.replicas[0].pid), held.replica);
      assert.ok(
        fx.logs.some((l) => /started replica pid\(s\) \d+:0 \(pre-started\)/.test(l)),
        fx.logs.join('\n'),
      );
      const replicaLog = logsIn(standbyLogs);
      assert.match(replicaLog, /starts .*server-.*\.js \(loaded in advance\)/);
      assert.match(
        replicaLog,
        /ferry inference server ready at unix:.*\.sock .*after the launch: code \d+ ms, models \d+ ms\)/,
      );

      // The replica's metrics, through the gateway: served on its socket, cold start recorded.
      const metrics = await (await fetch(`${fx.gateway.url}/_ferry/deployments/cold/metrics`)).text();
      const pid = woke.replicas[0].pid;
      assert.match(
        metrics,
        new RegExp(
          `^ferry_inference_cold_starts_total\\{replica="${pid}",revision="default",model="mlp",version="1"\\} 1$`,
          'm',
        ),
      );
      assert.match(
        metrics,
        new RegExp(
          `^ferry_inference_cold_start_duration_seconds_count\\{replica="${pid}",revision="default",model="mlp",version="1"\\} 1$`,
          'm',
        ),
      );
      assert.match(
        metrics,
        new RegExp(
          `^ferry_inference_requests_total\\{replica="${pid}",revision="default",model="mlp",version="1"\\} 1$`,
          'm',
        ),
      );
      assert.match(metrics, /target_info\{replica="\d+",revision="default",service_name="ferry-inference-server"/);
    } finally {
      await fx.cleanup();
    }
  });

  test('the standby serves only the program it loaded; a plan of another one gets its own process and the next standby is for it', {
    timeout: 60_000,
  }, async () => {
    const dir = await tempDir('standby-programs');
    const stateDir = path.join(dir, 'state');
    const standby = new StandbyProcess(stateDir, standbyBootEnv, readProcStartTicks, () => undefined);
    const started: number[] = [];
    try {
      const plan = await launchPlanForModelDir(await modelDirWith(MLP_V1, dir), stateDir);
      assert.ok(plan.socket && plan.standbyEntry, 'the bundled server supports both');
      const logDir = path.join(stateDir, 'logs');
      const socketDir = path.join(stateDir, 'gateway', 'sockets');
      const ready = async () => {
        standby.fill();
        await eventually('a standby process', () => standby.waiting, 20_000);
        await sleep(300);
      };

      // A first, plain standby runs any plan; it learns which program to load in advance next time.
      await ready();
      const a = await spawnReplica(plan, logDir, 'a', standby, socketDir);
      started.push(a.pid);
      assert.ok(a.prestarted);
      await waitUntilReady(a, 30_000);

      // The next one loaded the server: a plan running another script (a copy) does not get it.
      await ready();
      const other: LaunchPlan = { ...plan, key: 'other', args: [plan.args[0].replace(/\.js$/, '-copy.js')] };
      const { copyFileSync } = await import('node:fs');
      copyFileSync(plan.args[0], other.args[0]);
      const b = await spawnReplica(other, logDir, 'b', standby, socketDir);
      started.push(b.pid);
      assert.equal(b.prestarted, false, 'a process of its own');
      await waitUntilReady(b, 30_000);
      assert.equal(standby.waiting, false, 'the standby that loaded the other program is gone');

      // The next standby is for the copy's program (the plan started last).
      await ready();
      const c = await spawnReplica(other, logDir, 'c', standby, socketDir);
      started.push(c.pid);
      assert.ok(c.prestarted);
      await waitUntilReady(c, 30_000);
      assert.match(readFileSync(c.record.logFile, 'utf8'), /starts .*-copy\.js \(loaded in advance\)/);
      for (const r of [a, b, c]) await r.stop(5000);
      assert.ok(started.every((p) => !isAlive(p)));
    } finally {
      await standby.close();
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
