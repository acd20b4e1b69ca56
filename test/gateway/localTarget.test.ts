/** LocalTarget: the DeploymentTarget the pipeline uses, as a client of a real gateway. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from '../../lib/gateway/replicaProcess';
import { DeploymentNotFoundError } from '../../lib/targets/deploymentTarget';
import { LocalTarget } from '../../lib/targets/local';
import {
  assertAllDead,
  directOutput,
  type GatewayFixture,
  inferThrough,
  MLP_V1,
  modelDirWith,
  startTestGateway,
} from './gatewayFixture';

let fx: GatewayFixture;
before(async () => {
  fx = await startTestGateway('local-target');
});
after(() => fx.cleanup());

test('LocalTarget drives the whole lifecycle through the control API', async () => {
  const target = new LocalTarget(`${fx.gateway.url}/`);
  assert.equal(target.name, 'local');
  const modelDir = await modelDirWith(MLP_V1, fx.dir);

  const applied = await target.apply({ id: 'lt', model: 'mlp', replicas: 1, modelDir });
  assert.equal(applied.state, 'running');
  assert.equal(applied.endpoint, `${fx.gateway.url}/d/lt`);
  assert.equal(applied.replicas.length, 1);
  assert.equal(typeof applied.runningSince, 'string');
  const res = await inferThrough(applied.endpoint);
  assert.deepEqual(res.json.outputs[0].data, await directOutput(MLP_V1));

  assert.deepEqual(
    (await target.list()).map((d) => d.id),
    ['lt'],
  );
  const metrics = await target.metrics('lt');
  assert.match(
    metrics,
    /^ferry_inference_requests_total\{replica="\d+",revision="default",model="mlp",version="1"\} 1$/m,
  );

  const scaled = await target.scale('lt', 2);
  assert.equal(scaled.replicas.length, 2);
  assert.ok(
    scaled.replicas.some((r) => r.pid === applied.replicas[0].pid),
    'scaling keeps the running replica',
  );

  const hibernated = await target.hibernate('lt');
  assert.equal(hibernated.state, 'hibernated');
  assert.equal(await target.metrics('lt'), '', 'no replicas, no samples');
  const status = await target.status('lt');
  assert.equal(status.requestsServed, 1, 'the gateway count survives hibernation');
  assert.equal(status.runningSince, null);

  const woke = await target.wake('lt');
  assert.equal(woke.state, 'running');
  assert.equal(woke.replicas.length, 2);

  await target.destroy('lt');
  await assertAllDead(
    woke.replicas.map((r) => r.pid),
    'destroy',
  );
  await assert.rejects(target.status('lt'), DeploymentNotFoundError);
  await target.destroy('lt'); // idempotent
  await assert.rejects(
    target.apply({ id: 'lt', model: 'mlp', replicas: 0, modelDir }),
    /failed with 400: "replicas" must be an integer/,
  );
});

test('LocalTarget says how to start the gateway when it is down', async () => {
  const port = await freePort();
  const target = new LocalTarget(`http://127.0.0.1:${port}`);
  await assert.rejects(target.status('x'), (err: Error) => {
    assert.match(
      err.message,
      new RegExp(
        `^Ferry gateway at http://127.0.0.1:${port} is not reachable \\(ECONNREFUSED\\): start it with \`ferry up\``,
      ),
    );
    return true;
  });
});
