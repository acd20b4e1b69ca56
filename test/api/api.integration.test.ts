/**
 * The HTTP API behind the dashboard: upload-and-deploy over HTTP, the status view, approvals from the
 * dashboard (validated Update: unknown plan → 400) and from chat-ops (Signal), and the pages themselves.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { startApiServer } from '../../client/api/server';
import { signChatopsRequest } from '../../lib/auth/chatopsSignature';
import { eventually, type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
const chatopsSecret = 'chatops-test-secret';

/** A chat-ops request signed as Slack signs them. */
function chatops(body: unknown, secret = chatopsSecret, at = Math.floor(Date.now() / 1000)) {
  const raw = JSON.stringify(body);
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-slack-request-timestamp': String(at),
      'x-slack-signature': signChatopsRequest(secret, at, raw),
    },
    body: raw,
  };
}
let api: { url: string; close(): Promise<void> };
before(async () => {
  h = await startHarness('api');
  await h.startWorker();
  h.config.access.chatopsSecret = chatopsSecret;
  api = await startApiServer(h.config, await freePort());
});
after(async () => {
  await api?.close();
  await h?.close();
});

async function json(res: Response) {
  return { status: res.status, body: (await res.json()) as any };
}

test('deploy over HTTP in review mode, refuse a bad approval, approve through the chat-ops webhook', async () => {
  const name = `api-${h.runId}`;
  const bytes = await readFile(await h.writeModel(name, { inputDim: 12, hiddenDims: [24], outputDim: 3, seed: 8 }));
  const started = await json(
    await fetch(`${api.url}/api/deployments?name=${name}&mode=review`, {
      method: 'POST',
      headers: { ...h.adminAuth, 'content-type': 'application/octet-stream' },
      body: bytes,
    }),
  );
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const id = started.body.deploymentId as string;
  assert.equal(started.body.alreadyExisted, false);

  // Upload and the optimize stage's measurements come first: on a busy machine they take a while.
  const view = await eventually(
    'the run to wait for approval',
    async () => {
      const v = await json(await fetch(`${api.url}/api/deployments/${id}`, { headers: h.adminAuth }));
      return v.body.status?.phase === 'awaiting-approval' ? v.body : undefined;
    },
    120_000,
  );
  assert.ok(view.temporalUiUrl.includes(encodeURIComponent(`deploy:${name}:`)));

  const refused = await json(
    await fetch(`${api.url}/api/deployments/${id}/approve`, {
      method: 'POST',
      headers: { ...h.adminAuth, 'content-type': 'application/json' },
      body: JSON.stringify({ plan: 'no-such-plan' }),
    }),
  );
  assert.equal(refused.status, 400);
  assert.match(refused.body.error, /unknown plan "no-such-plan"/);

  const approval = { deployment: id, plan: 'original', user: 'carol' };
  const unsigned = await json(
    await fetch(`${api.url}/api/chatops/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(approval),
    }),
  );
  assert.equal(unsigned.status, 401, 'an unsigned chat-ops request changes nothing');
  const forged = await json(await fetch(`${api.url}/api/chatops/approve`, chatops(approval, 'wrong-secret')));
  assert.equal(forged.status, 401);
  const stale = await json(
    await fetch(
      `${api.url}/api/chatops/approve`,
      chatops(approval, chatopsSecret, Math.floor(Date.now() / 1000) - 600),
    ),
  );
  assert.equal(stale.status, 401);
  assert.match(stale.body.error, /replay window/);
  const missing = await json(await fetch(`${api.url}/api/chatops/approve`, chatops({})));
  assert.equal(missing.status, 400);
  const bogusPlan = await json(await fetch(`${api.url}/api/chatops/approve`, chatops({ ...approval, plan: 'nope' })));
  assert.equal(bogusPlan.status, 400, 'an approval that is refused says so');
  const accepted = await json(await fetch(`${api.url}/api/chatops/approve`, chatops(approval)));
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  assert.equal(accepted.body.accepted, true);
  const trail = await json(await fetch(`${api.url}/api/audit?deployment=${id}`, { headers: h.adminAuth }));
  assert.deepEqual(
    trail.body.map((e: { action: string; keyName: string }) => [e.action, e.keyName.replace(/-\w+$/, '-<id>')]),
    [
      ['approve', 'chatops:carol'],
      ['deploy', 'bootstrap-admin-<id>'],
    ],
    'auth is on by default: the deploy is recorded as the bootstrap admin key that sent it',
  );

  const done = await h.ferry.waitForResult(id);
  assert.equal(done.chosenPlan?.approvedBy, 'carol');
  assert.equal(done.phase, 'live');

  const list = await json(await fetch(`${api.url}/api/deployments`, { headers: h.adminAuth }));
  assert.ok(list.body.some((d: { deploymentId: string }) => d.deploymentId === id));
  const page = await fetch(`${api.url}/deployments/${id}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/assets\/dashboard\.js"/, 'the dashboard page loads its bundle');
  assert.equal((await fetch(`${api.url}/nope`)).status, 404);
  const unknown = await json(await fetch(`${api.url}/api/deployments/not-a-deployment`, { headers: h.adminAuth }));
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.error, /no deployment "not-a-deployment"/);
  await h.ferry.undeploy(id);
});
