/**
 * The spot interruption path, on this machine: Ferry's gateway in front of two real replicas (Ferry's
 * inference server), the replica agent — the very bundle the instances' user data carries, run by node —
 * looking after one of them, and a stand-in for the instance metadata service on 127.0.0.1 (IMDSv2
 * tokens and the notice paths). Under a load loop, the stand-in announces the interruption; the agent asks
 * the gateway to drain its replica and replace it, then SIGTERMs it. Not one request may fail, and the
 * replacement must serve.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundleReplicaAgent } from '../../lib/targets/ec2/agentBundle';
import {
  control,
  eventually,
  type GatewayFixture,
  inferSlow,
  isAlive,
  slowModelDir,
  startLoad,
  startTestGateway,
} from '../gateway/gatewayFixture';
import { type MetadataStandIn, startMetadataStandIn } from '../helpers/metadataStandIn';

let fx: GatewayFixture;
let imds: MetadataStandIn;
let agent: ChildProcess | undefined;
const agentLog: string[] = [];

before(async () => {
  fx = await startTestGateway('ec2-interruption', { drainTimeoutMs: 20_000 });
  imds = await startMetadataStandIn({ instanceId: 'i-0interrupted00001', zone: 'us-east-1b' });
});
after(async () => {
  agent?.kill('SIGKILL');
  await imds?.close();
  await fx?.cleanup();
});

/** Rows per request: tens of milliseconds of onnxruntime here, so requests are in flight when the notice comes. */
const ROWS = 3000;

test('spot interruption notice from a metadata stand-in: the agent drains its replica behind the gateway, a replacement serves, zero failed requests', {
  timeout: 120_000,
}, async () => {
  const modelDir = await slowModelDir(fx.dir);
  const put = await control(fx.gateway.url, 'PUT', '/deployments/spot', { model: 'slow', modelDir, replicas: 2 });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  const endpoint: string = put.json.endpoint;
  const pids: number[] = put.json.replicas.map((r: { pid: number }) => r.pid);
  assert.equal(pids.length, 2);
  const [doomed, survivor] = pids;

  const script = path.join(fx.dir, 'agent.js');
  await writeFile(script, await bundleReplicaAgent());
  agent = spawn(process.execPath, [script], {
    env: {
      PATH: process.env.PATH,
      FERRY_AGENT_METADATA_URL: imds.url,
      FERRY_AGENT_POLL_MS: '100',
      FERRY_AGENT_FERRY_URL: fx.gateway.url,
      FERRY_AGENT_DEPLOYMENT: 'spot',
      FERRY_AGENT_REPLICA_PID: String(doomed),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  agent.stdout?.on('data', (d) => agentLog.push(...String(d).trim().split('\n')));
  agent.stderr?.on('data', (d) => agentLog.push(String(d)));
  const agentEvents = () => agentLog.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l)] : []));

  // Bounded load: 4 clients back to back, stopped below (and at most 60 s by the test's timeout).
  const load = startLoad(4, () => inferSlow(endpoint, ROWS));
  await eventually('both replicas serving under load', () => {
    const by = new Set(load.outcomes.map((o) => Number(o.replica)));
    return by.has(doomed) && by.has(survivor);
  });
  await eventually('the agent polling the stand-in', () =>
    imds.log.some((l) => l.includes('spot/instance-action 404')),
  );

  const noticeAt = performance.now();
  imds.announceInterruption('terminate', 120_000);
  const drained = await eventually(
    'the agent to report the replica drained',
    () => agentEvents().find((e) => e.event === 'drained'),
    60_000,
  );
  assert.equal(isAlive(doomed), false, 'the interrupted replica exited');
  const replacement = await eventually('a replacement replica, ready', async () => {
    const s = (await control(fx.gateway.url, 'GET', '/deployments/spot')).json;
    const ready = s.replicas.filter((r: { ready: boolean }) => r.ready).map((r: { pid: number }) => r.pid);
    return ready.length === 2 && !ready.includes(doomed) ? ready.find((p: number) => p !== survivor) : undefined;
  });
  await eventually('the replacement serving', () => load.outcomes.some((o) => Number(o.replica) === replacement));
  await sleep(500);
  const outcomes = await load.stop();

  const failed = outcomes.filter((o) => o.status !== 200);
  assert.deepEqual(
    failed.map((o) => `${o.status} ${JSON.stringify(o.json).slice(0, 200)}`),
    [],
    'no request failed',
  );
  assert.ok(outcomes.length >= 20, `${outcomes.length} requests`);
  const afterNotice = outcomes.filter((o) => (o.sentAt ?? 0) > noticeAt);
  assert.ok(afterNotice.length > 0, 'requests kept coming after the notice');
  // The agent asked Ferry (the gateway answered 200) before it signalled the replica.
  assert.deepEqual(drained.ferry, { status: 200 });
  assert.equal(drained.reason, 'spot-interruption');
  assert.equal(drained.signalled, true);
  const order = agentEvents().map((e) => e.event);
  assert.ok(order.indexOf('ferry-asked') < order.indexOf('replica-signalled'), order.join(', '));
  assert.ok(
    fx.gateway && fx.logs.some((l) => /draining replica pid \d+ \(spot-interruption\)/.test(l)),
    fx.logs.join('\n'),
  );
  // IMDSv2: a token first, then reads with it.
  assert.ok(imds.log[0].startsWith('PUT /latest/api/token 200'), imds.log.slice(0, 3).join('\n'));
  assert.ok(imds.log.some((l) => l === 'GET /latest/meta-data/spot/instance-action 200'));
  // A replica the deployment does not have (the drained one is gone now) is refused.
  const unknown = await control(fx.gateway.url, 'POST', `/deployments/spot/replicas/${doomed}/drain`, {});
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json.code, 'bad_request');
});
