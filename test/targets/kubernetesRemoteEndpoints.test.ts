/**
 * The gateway serving replicas it does not run (the kubernetes target's pods, here real HTTP servers
 * on 127.0.0.1 standing in for pod IPs): traffic split across revisions, a request held while a
 * revision at zero is scaled up through the scaler and forwarded once an endpoint is ready, and idle
 * scale to zero through the same scaler, and what the gateway saw of the requests reported to where the
 * deployment runs. No cluster needed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Gateway, startGateway } from '../../lib/gateway/gateway';
import { type RemoteActivity, RemoteDeployment, type RemoteSpec } from '../../lib/gateway/remoteDeployment';

/** A server answering with its own name, as a pod would with its revision. */
async function endpointServer(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ served: name, path: req.url }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const spec = (over: Partial<RemoteSpec> = {}): RemoteSpec => ({
  model: 'mlp',
  access: { project: 'default', public: true },
  replicas: 1,
  revisions: [{ name: 'v1' }, { name: 'v2' }],
  traffic: { split: { v1: 90, v2: 10 }, rules: [] },
  autoscaling: null,
  scaleToZeroAfterMs: null,
  ...over,
});

describe('gateway with remote endpoints', () => {
  let dir: string;
  let gateway: Gateway;
  const remotes = new Map<string, RemoteDeployment>();
  const servers = new Map<string, { port: number; close(): Promise<void> }>();
  const scaleCalls: Array<[string, number]> = [];

  /** Plays the cluster: a scale to n > 0 starts an endpoint after a delay; 0 stops it. */
  function scalerFor(id: string) {
    return async (revision: string, replicas: number) => {
      scaleCalls.push([revision, replicas]);
      const remote = remotes.get(id)!;
      const key = `${id}/${revision}`;
      remote.setDesired(revision, replicas);
      if (replicas === 0) {
        await servers.get(key)?.close();
        servers.delete(key);
        remote.setEndpoints(revision, []);
        return;
      }
      setTimeout(async () => {
        if (!servers.has(key)) servers.set(key, await endpointServer(`${id}:${revision}`));
        remote.setEndpoints(revision, [
          {
            name: `${revision}-pod`,
            host: '127.0.0.1',
            port: servers.get(key)!.port,
            startedAt: new Date().toISOString(),
          },
        ]);
      }, 150);
    };
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ferry-remote-'));
    gateway = await startGateway({
      port: 0,
      stateDir: dir,
      standby: false,
      log: () => {},
      remoteDeployments: { get: (id) => remotes.get(id), close: () => {} },
    });
  });

  after(async () => {
    await gateway.close();
    for (const s of servers.values()) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('splits requests between the revisions by the policy and by header', async () => {
    const id = 'split';
    const remote = new RemoteDeployment(id, spec(), scalerFor(id), () => {});
    remotes.set(id, remote);
    const scale = scalerFor(id);
    await scale('v1', 1);
    await scale('v2', 1);
    await new Promise((r) => setTimeout(r, 300));
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${gateway.url}/d/${id}/v2/health/ready`);
      assert.equal(res.status, 200);
      const revision = res.headers.get('x-ferry-revision')!;
      assert.equal(res.headers.get('x-ferry-replica'), `${revision}-pod`);
      assert.equal(((await res.json()) as { served: string }).served, `${id}:${revision}`);
      counts[revision] = (counts[revision] ?? 0) + 1;
    }
    assert.ok(counts.v2 >= 5 && counts.v2 <= 45, `v2 got ${counts.v2} of 200 at 10%`);
    const byHeader = await fetch(`${gateway.url}/d/${id}/x`, { headers: { 'x-ferry-variant': 'v2' } });
    assert.equal(byHeader.headers.get('x-ferry-revision'), 'v2');
    // Promote: the spec names v2 alone; from the next request on all go there.
    remote.update(spec({ revisions: [{ name: 'v2' }], traffic: { split: { v2: 100 }, rules: [] } }));
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gateway.url}/d/${id}/x`);
      assert.equal(res.headers.get('x-ferry-revision'), 'v2');
      await res.arrayBuffer();
    }
  });

  it('holds a request while a revision at zero is scaled up, then forwards it', async () => {
    const id = 'cold';
    scaleCalls.length = 0;
    const remote = new RemoteDeployment(
      id,
      spec({ revisions: [{ name: 'v1' }], traffic: { split: { v1: 100 }, rules: [] } }),
      scalerFor(id),
      () => {},
    );
    remotes.set(id, remote);
    assert.equal(remote.state, 'hibernated');
    const answers = await Promise.all(
      [1, 2, 3].map(async () => {
        const res = await fetch(`${gateway.url}/d/${id}/v2/models`);
        return { status: res.status, body: (await res.json()) as { served: string } };
      }),
    );
    for (const a of answers) assert.deepEqual(a, { status: 200, body: { served: `${id}:v1`, path: '/v2/models' } });
    assert.deepEqual(scaleCalls, [['v1', 1]], 'one scale-up for all held requests');
    assert.equal(remote.record.coldStarts, 1);
  });

  it('reports its activity: at once when a request wakes it (before the pods are up), then at most every few seconds', async () => {
    const id = 'activity';
    const reports: Array<{ activity: RemoteActivity; scaled: number }> = [];
    scaleCalls.length = 0;
    const remote = new RemoteDeployment(
      id,
      spec({ revisions: [{ name: 'v1' }], traffic: { split: { v1: 100 }, rules: [] } }),
      scalerFor(id),
      () => {},
      async (activity) => {
        reports.push({ activity, scaled: scaleCalls.length });
      },
    );
    remotes.set(id, remote);
    const before = Date.now();
    const res = await fetch(`${gateway.url}/d/${id}/x`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(reports.length, 1, 'the wake is reported at once');
    assert.equal(reports[0].scaled, 0, 'before the scale-up');
    assert.ok(Date.parse(reports[0].activity.lastRequestAt!) >= before - 1);
    assert.equal(reports[0].activity.coldStarts, 1);
    // Served since: due only after ACTIVITY_REPORT_MS, so a tick now sends nothing.
    remote.tick();
    assert.equal(reports.length, 1);
    for (let i = 0; i < 3; i++) await (await fetch(`${gateway.url}/d/${id}/x`)).arrayBuffer();
    assert.equal(remote.activity.requestsServed, 4);
    assert.ok(remote.activity.lastWakeMs !== null && remote.activity.lastWakeMs >= 0);
  });

  it('scales an idle revision to zero through the scaler', async () => {
    const id = 'idle';
    scaleCalls.length = 0;
    const remote = new RemoteDeployment(
      id,
      spec({ revisions: [{ name: 'v1' }], traffic: { split: { v1: 100 }, rules: [] }, scaleToZeroAfterMs: 300 }),
      scalerFor(id),
      () => {},
    );
    remotes.set(id, remote);
    const res = await fetch(`${gateway.url}/d/${id}/x`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const deadline = Date.now() + 5000;
    while (remote.state !== 'hibernated' && Date.now() < deadline) {
      remote.tick();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(remote.state, 'hibernated');
    assert.deepEqual(scaleCalls, [
      ['v1', 1],
      ['v1', 0],
    ]);
  });
});
