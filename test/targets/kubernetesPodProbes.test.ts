/**
 * The gateway's own readiness probe of a started pod (lib/targets/kubernetes/podProbes.ts), against a
 * real HTTP server on 127.0.0.1 standing in for the pod's server: routable once it answers, before the
 * kubelet says Ready; after the kubelet has said Ready, its word alone counts; a pod being deleted never.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { PodProbes } from '../../lib/targets/kubernetes/podProbes';

function pod(uid: string, over: { ready?: boolean; running?: boolean; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: { uid, name: `p-${uid}`, ...(over.deleting ? { deletionTimestamp: new Date() } : {}) },
    status: {
      podIP: '127.0.0.1',
      conditions: [{ type: 'Ready', status: over.ready ? 'True' : 'False' }],
      containerStatuses: [
        {
          name: 'server',
          image: 'x',
          imageID: 'x',
          ready: over.ready ?? false,
          restartCount: 0,
          state: over.running === false ? { waiting: { reason: 'ContainerCreating' } } : { running: {} },
        },
      ],
    },
  };
}

describe('PodProbes', () => {
  let server: http.Server;
  let port: number;
  let answersBeforeReady = 3;
  before(async () => {
    server = http.createServer((_req, res) => {
      res.statusCode = answersBeforeReady-- > 0 ? 503 : 200;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('makes a started pod routable once its server answers, before the kubelet reports it Ready', async () => {
    let answered: V1Pod | undefined;
    const probes = new PodProbes((p) => {
      answered = p;
    }, port);
    assert.equal(probes.routable(pod('a', { running: false })), false, 'not started: not probed');
    assert.equal(probes.routable(pod('a')), false, 'started, not answered yet');
    const deadline = Date.now() + 5000;
    while (!answered && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(answered?.metadata?.uid, 'a');
    assert.equal(probes.routable(pod('a')), true);
    assert.equal(probes.routable(pod('a', { deleting: true })), false, 'a pod being deleted is never routable');
    probes.close();
  });

  it('after the kubelet has reported a pod Ready, an unready report takes it out (no probe overrides it)', () => {
    const probes = new PodProbes(() => assert.fail('no probe once the kubelet has reported Ready'), port);
    assert.equal(probes.routable(pod('b', { ready: true })), true);
    assert.equal(probes.routable(pod('b')), false);
    probes.forget(pod('b'));
    probes.close();
  });
});
