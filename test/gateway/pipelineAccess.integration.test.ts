/**
 * Keys end to end on the real stack, with auth on: `ferry gateway` checks keys against PostgreSQL, the
 * worker's deploy activity calls it with this machine's key (FERRY_API_KEY here), and a deploy made for a
 * project arrives at the gateway with that project; its inference then needs a key with `infer` on it,
 * and a public one (`ferry deploy --public`) needs none.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { after, before, test } from 'node:test';
import { KeyStore } from '../../lib/auth/keyStore';
import { loadConfig } from '../../lib/config';
import { closePools, getPool } from '../../lib/db/pool';
import { type FerryHarness, startHarness } from '../helpers/ferryHarness';

const run = Date.now().toString(36);
const project = `pipe-${run}`;
const key: Record<string, string> = {};
const saved = { auth: process.env.FERRY_AUTH, key: process.env.FERRY_API_KEY };
let h: FerryHarness;

before(async () => {
  const config = loadConfig();
  const keys = new KeyStore(getPool(config.postgres.url));
  key.machine = (await keys.createKey({ project: 'default', name: `machine-${run}`, scopes: ['admin'] })).key;
  key.infer = (await keys.createKey({ project, name: 'infer', scopes: ['infer'] })).key;
  key.stranger = (await keys.createKey({ project: `pipx-${run}`, name: 'all', scopes: ['infer', 'read'] })).key;
  // The gateway and the worker the harness starts, and this process's SDK, all read these.
  Object.assign(process.env, { FERRY_AUTH: 'on', FERRY_API_KEY: key.machine });
  h = await startHarness('pipeaccess');
  await h.startWorker();
});
after(async () => {
  await h?.close();
  for (const [name, value] of [
    ['FERRY_AUTH', saved.auth],
    ['FERRY_API_KEY', saved.key],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await closePools();
});

test("a project's deploy reaches the gateway with its project; inference needs infer on it", async () => {
  const name = `pa-${h.runId}`;
  const file = await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3, seed: 5 });
  const started = await h.ferry.deployStream(createReadStream(file), {
    model: name,
    maxBytes: 1 << 26,
    fileName: `${name}.onnx`,
    access: { project, public: false },
  });
  const status = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(status.phase, 'live', JSON.stringify(status.stages));

  const served = await h.gatewayStatus(started.deploymentId);
  assert.equal(served.status, 200);
  assert.deepEqual(served.body.spec.access, { project, public: false });
  const keyless = await fetch(`${h.config.gateway.url}/_ferry/deployments/${started.deploymentId}`);
  assert.equal(keyless.status, 401, 'the control API asks for a key');

  const infer = (headers: Record<string, string>) =>
    fetch(status.inferUrl!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 0, 0, 1, 0.5, 0, 0, 2] }],
      }),
    });
  assert.equal((await infer({})).status, 401);
  assert.equal((await infer({ authorization: `Bearer ${key.stranger}` })).status, 404);
  const ok = await infer({ authorization: `Bearer ${key.infer}` });
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal(((await ok.json()) as any).outputs[0].shape.join(','), '1,3');
  // The SDK (this machine's key) reaches it too.
  const viaSdk = await h.ferry.infer(started.deploymentId, {
    inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [0, 0, 0, 0, 0, 0, 0, 0] }],
  });
  assert.equal(viaSdk.outputs[0].shape.join(','), '1,3');
});

test('a public deploy (the SDK path of `ferry deploy --public`) serves inference without a key', async () => {
  const name = `pp-${h.runId}`;
  const file = await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3, seed: 6 });
  const started = await h.ferry.deploy(file, { model: name, access: { project: 'default', public: true } });
  const status = await h.ferry.waitForResult(started.deploymentId);
  assert.equal(status.phase, 'live', JSON.stringify(status.stages));
  assert.deepEqual((await h.gatewayStatus(started.deploymentId)).body.spec.access, {
    project: 'default',
    public: true,
  });
  const res = await fetch(status.inferUrl!, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 1, 1, 1, 1, 1, 1, 1] }],
    }),
  });
  assert.equal(res.status, 200, await res.text());
});
