/**
 * The HTTP API behind the dashboard: upload-and-deploy over HTTP, the status view, approvals from the
 * dashboard (validated Update: unknown plan → 400) and from chat-ops (Signal), and the pages themselves.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { startApiServer } from '../../client/api/server';
import { eventually, type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';

let h: FerryHarness;
let api: { url: string; close(): Promise<void> };
before(async () => {
  h = await startHarness('api');
  await h.startWorker();
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
    await fetch(`${api.url}/api/deployments?name=${name}&mode=review`, { method: 'POST', body: bytes }),
  );
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const id = started.body.deploymentId as string;
  assert.equal(started.body.alreadyExisted, false);

  const view = await eventually('the run to wait for approval', async () => {
    const v = await json(await fetch(`${api.url}/api/deployments/${id}`));
    return v.body.status?.phase === 'awaiting-approval' ? v.body : undefined;
  });
  assert.ok(view.temporalUiUrl.includes(encodeURIComponent(`deploy:${name}:`)));

  const refused = await json(
    await fetch(`${api.url}/api/deployments/${id}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ plan: 'no-such-plan' }),
    }),
  );
  assert.equal(refused.status, 400);
  assert.match(refused.body.error, /unknown plan "no-such-plan"/);

  const missing = await json(await fetch(`${api.url}/api/chatops/approve`, { method: 'POST', body: '{}' }));
  assert.equal(missing.status, 400);
  const accepted = await json(
    await fetch(`${api.url}/api/chatops/approve`, {
      method: 'POST',
      body: JSON.stringify({ deployment: id, plan: 'original', user: 'carol' }),
    }),
  );
  assert.equal(accepted.status, 200);

  const done = await h.ferry.waitForResult(id);
  assert.equal(done.chosenPlan?.approvedBy, 'carol');
  assert.equal(done.phase, 'live');

  const list = await json(await fetch(`${api.url}/api/deployments`));
  assert.ok(list.body.some((d: { deploymentId: string }) => d.deploymentId === id));
  const page = await fetch(`${api.url}/deployments/${id}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<svg|chart\(/);
  assert.equal((await fetch(`${api.url}/nope`)).status, 404);
  const unknown = await json(await fetch(`${api.url}/api/deployments/not-a-deployment`));
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.error, /no deployment named "not-a-deployment"/);
  await h.ferry.undeploy(id);
});
