/**
 * The replica agent's pure parts (what the metadata answers mean, when to drain) and its metadata client
 * against a stand-in for the metadata service on 127.0.0.1 (IMDSv2 tokens included).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { agentSettingsFromEnv, ReplicaAgent } from '../../runtime/agent/agent';
import { MetadataClient } from '../../runtime/agent/imds';
import { decide, parseInstanceAction, parseRebalance } from '../../runtime/agent/notices';
import { findReplicaPid, isAlive } from '../../runtime/agent/replicaProcess';
import { type MetadataStandIn, startMetadataStandIn } from '../helpers/metadataStandIn';

let imds: MetadataStandIn;
before(async () => {
  imds = await startMetadataStandIn();
});
after(async () => {
  await imds?.close();
});

test('metadata answers: 404 is no notice; a notice is parsed; anything else is an error', () => {
  assert.equal(parseInstanceAction({ status: 404, body: '' }), undefined);
  assert.deepEqual(parseInstanceAction({ status: 200, body: '{"action":"terminate","time":"2026-12-03T18:00:00Z"}' }), {
    kind: 'interruption',
    action: 'terminate',
    at: '2026-12-03T18:00:00Z',
  });
  assert.deepEqual(parseRebalance({ status: 200, body: '{"noticeTime":"2026-12-03T17:58:00Z"}' }), {
    kind: 'rebalance',
    at: '2026-12-03T17:58:00Z',
  });
  assert.throws(() => parseInstanceAction({ status: 500, body: '' }), /HTTP 500/);
  assert.throws(() => parseRebalance({ status: 200, body: '{"time":1}' }), /unexpected answer/);
});

test('decisions: drain once on the interruption notice; a rebalance drains or waits by policy', () => {
  const interruption = { kind: 'interruption' as const, action: 'terminate', at: 'x' };
  const rebalance = { kind: 'rebalance' as const, at: 'y' };
  assert.deepEqual(decide('serving', [undefined, undefined], { onRebalance: 'drain' }), { drain: false });
  assert.deepEqual(decide('serving', [interruption, rebalance], { onRebalance: 'drain' }), {
    drain: true,
    reason: 'spot-interruption',
    notice: interruption,
  });
  assert.deepEqual(decide('serving', [undefined, rebalance], { onRebalance: 'drain' }), {
    drain: true,
    reason: 'rebalance-recommendation',
    notice: rebalance,
  });
  assert.deepEqual(decide('serving', [undefined, rebalance], { onRebalance: 'ignore' }), { drain: false });
  assert.deepEqual(decide('draining', [interruption], { onRebalance: 'drain' }), { drain: false });
  assert.deepEqual(decide('drained', [interruption], { onRebalance: 'drain' }), { drain: false });
});

test('metadata client: takes a session token first, and renews it when it is refused', async () => {
  const client = new MetadataClient(imds.url);
  assert.equal(await client.required('instance-id'), 'i-0standin0000000001');
  assert.equal((await client.get('spot/instance-action')).status, 404);
  imds.expireTokens();
  assert.equal(await client.required('placement/availability-zone'), 'us-east-1b');
  const puts = imds.log.filter((l) => l.startsWith('PUT /latest/api/token 200'));
  assert.equal(puts.length, 2, imds.log.join('\n'));
  assert.ok(imds.log.includes('GET /latest/meta-data/placement/availability-zone 401'));
  // Without a token the stand-in refuses, as an IMDSv2-only instance does.
  assert.equal((await fetch(`${imds.url}/latest/meta-data/instance-id`)).status, 401);
});

test('settings from the environment are checked', () => {
  assert.throws(() => agentSettingsFromEnv({ FERRY_AGENT_POLL_MS: '1' }), /FERRY_AGENT_POLL_MS/);
  assert.throws(() => agentSettingsFromEnv({ FERRY_AGENT_ON_REBALANCE: 'panic' }), /drain or ignore/);
  assert.throws(() => agentSettingsFromEnv({ FERRY_AGENT_REPLICA_PID: 'x' }), /pid/);
  const s = agentSettingsFromEnv({ FERRY_AGENT_REPLICA_PID: '42', FERRY_AGENT_FERRY_URL: 'http://127.0.0.1:1' });
  assert.equal(s.replicaPid, 42);
  assert.equal(s.metadataUrl, 'http://169.254.169.254');
  assert.equal(s.onRebalance, 'drain');
});

test('without Ferry the agent drains its replica on the notice: SIGTERM, found by its command line', async () => {
  // A stand-in process for the replica: exits 0 on SIGTERM, as the inference server does once drained.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-agent-'));
  const script = path.join(dir, 'replica.js');
  await writeFile(script, "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);\n");
  const child = spawn(process.execPath, [script], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  try {
    assert.equal(await findReplicaPid(`${process.execPath} ${script}`), child.pid);
    assert.equal(await findReplicaPid('no-such-program --at-all'), undefined);
    const events: Array<Record<string, unknown>> = [];
    const agent = new ReplicaAgent({
      metadataUrl: imds.url,
      pollMs: 50,
      onRebalance: 'drain',
      replicaCmdline: `${process.execPath} ${script}`,
      log: (e) => events.push(e),
    });
    assert.deepEqual(await agent.pollOnce(), { drain: false });
    imds.announceInterruption();
    assert.equal((await agent.pollOnce()).drain, true);
    const report = await agent.drained;
    assert.equal(report?.ferry, 'not configured');
    assert.equal(report?.signalled, true);
    assert.equal(isAlive(child.pid as number), false);
    const [code] = child.exitCode === null ? await once(child, 'exit') : [child.exitCode];
    assert.equal(code, 0, 'the replica exited as drained');
    assert.equal(agent.phase, 'drained');
    assert.deepEqual(await agent.pollOnce(), { drain: false }, 'nothing happens twice');
    assert.deepEqual(
      events.map((e) => e.event),
      ['notice', 'ferry-asked', 'replica-signalled', 'drained'],
    );
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
