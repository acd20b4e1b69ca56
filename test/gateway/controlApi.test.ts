/**
 * The control API on fastify, walked from the gateway's own route list: every route is documented in
 * /_ferry/openapi.json and declares a scope (or that it is public), answers match the response schemas
 * they declare, wrong methods get 405 with Allow, and malformed requests get 4xx with a code, never 500.
 * (Who may call which route, with keys: controlAccess.integration.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Ajv from 'ajv';
import * as schemas from '../../lib/gateway/controlSchemas';
import { control, type GatewayFixture, MLP_V1, modelDirWith, startTestGateway } from './gatewayFixture';

let fx: GatewayFixture;
let modelDir: string;
const pulled: string[] = [];
const ALLOWED = 'http://127.0.0.1:5999';

before(async () => {
  fx = await startTestGateway('control-api', {
    standby: false,
    allowedRegistries: [ALLOWED],
    pullImage: async (ref) => {
      pulled.push(ref.registry);
      throw new Error('no registry in this test');
    },
  });
  modelDir = await modelDirWith(MLP_V1, fx.dir);
  const put = await control(fx.gateway.url, 'PUT', '/deployments/api', { model: 'mlp', replicas: 1, modelDir });
  assert.equal(put.status, 200, JSON.stringify(put.json));
});
after(() => fx?.cleanup());

const raw = (method: string, path: string, init: RequestInit = {}) =>
  fetch(`${fx.gateway.url}${path}`, { method, ...init });

describe('control API routes', () => {
  test('every route is in the OpenAPI document and declares its scope or that it is public', async () => {
    const doc = (await (await raw('GET', '/_ferry/openapi.json')).json()) as { paths: Record<string, object> };
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)),
    );
    const routes = fx.gateway.controlRoutes;
    assert.ok(routes.length >= 12, `${routes.length} routes`);
    for (const r of routes) {
      assert.ok(r.access.public || r.access.scope, `${r.method} ${r.url} declares neither a scope nor public`);
      if (r.url === '/_ferry/openapi.json') continue; // the document itself
      assert.ok(documented.has(`${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`), `${r.method} ${r.url} undocumented`);
    }
    const guarded = routes.filter((r) => !r.access.public).map((r) => `${r.method} ${r.url}`);
    assert.ok(guarded.includes('PUT /_ferry/deployments/:id/traffic'));
    assert.deepEqual(
      routes.filter((r) => r.access.public).map((r) => r.url),
      ['/_ferry/health', '/_ferry/openapi.json'],
    );
  });

  test('answers match the schemas their routes declare', async () => {
    const ajv = new Ajv({ strict: false });
    const check = async (schema: object, path: string, method = 'GET'): Promise<any> => {
      const res = await raw(method, path);
      assert.equal(res.status, 200, path);
      const body = (await res.json()) as any;
      const validate = ajv.compile(schema);
      assert.ok(validate(body), `${method} ${path}: ${ajv.errorsText(validate.errors)}`);
      return body;
    };
    const list = await check(schemas.deploymentList, '/_ferry/deployments');
    assert.deepEqual(
      list.deployments.map((d: { id: string }) => d.id),
      ['api'],
    );
    const status = await check(schemas.deploymentStatus, '/_ferry/deployments/api');
    assert.deepEqual(
      status.spec.access,
      { project: 'default', public: false },
      'a new deployment: the caller’s project',
    );
    await check(schemas.replicaMetricsJson, '/_ferry/deployments/api/metrics?format=json');
    const text = await raw('GET', '/_ferry/deployments/api/metrics');
    assert.match(text.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
    assert.match(await text.text(), /replica="\d+"/);
    assert.match(await (await raw('GET', '/metrics')).text(), /ferry_gateway_ready_replicas\{deployment="api"/);
    // What a status says re-creates the deployment: applying it again changes nothing.
    const again = await control(fx.gateway.url, 'PUT', '/deployments/api', status.spec);
    assert.equal(again.status, 200);
    assert.deepEqual(
      again.json.replicas.map((r: { pid: number }) => r.pid),
      status.replicas.map((r: { pid: number }) => r.pid),
    );
  });

  test('a method a path does not take gets 405 with Allow; an unknown path 404 no_route', async () => {
    const cases: Array<[string, string, string]> = [
      ['POST', '/_ferry/deployments', 'GET'],
      ['GET', '/_ferry/deployments/api/scaling', 'PUT'],
      ['PATCH', '/_ferry/deployments/api', 'GET, PUT, DELETE'],
      ['DELETE', '/_ferry/deployments/api/wake', 'POST'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await raw(method, path);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), allow);
      assert.equal(((await res.json()) as any).code, 'method_not_allowed');
    }
    for (const path of ['/_ferry/nope', '/_ferry', '/elsewhere', '/_ferry/deployments/api/nope']) {
      const res = await raw('GET', path);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as any).code, 'no_route');
    }
  });

  test('malformed requests get 4xx with a code naming the problem, never 500', async () => {
    const json = (body: string) => ({ body, headers: { 'content-type': 'application/json' } });
    const cases: Array<[string, string, RequestInit, number, string, RegExp]> = [
      ['PUT', '/_ferry/deployments/x', json('{"model":'), 400, 'bad_request', /malformed JSON body/],
      ['PUT', '/_ferry/deployments/x', json('null'), 400, 'bad_request', /body must be a JSON object/],
      ['PUT', '/_ferry/deployments/x', json(`${'['.repeat(5000)}${']'.repeat(5000)}`), 400, 'bad_request', /deeper/],
      [
        'PUT',
        '/_ferry/deployments/x',
        json('{"model":"m","replicas":"2"}'),
        400,
        'bad_request',
        /"replicas" must be an integer/,
      ],
      [
        'PUT',
        '/_ferry/deployments/x',
        json('{"model":"m","image":{"registry":"r"}}'),
        400,
        'bad_request',
        /"image.repository" must be given/,
      ],
      [
        'PUT',
        '/_ferry/deployments/x',
        json('{"model":"m","revisions":[{"name":"a","nope":1}]}'),
        400,
        'bad_request',
        /"revisions\[0\]" has an unknown field "nope"/,
      ],
      [
        'PUT',
        '/_ferry/deployments/x',
        json(`{"model":"${'m'.repeat(2 * 1024 * 1024)}"}`),
        413,
        'payload_too_large',
        /./,
      ],
      [
        'PUT',
        '/_ferry/deployments/x',
        { body: '<model/>', headers: { 'content-type': 'application/xml' } },
        415,
        'unsupported_media_type',
        /./,
      ],
      ['PUT', '/_ferry/deployments/-bad', json('{"model":"m"}'), 400, 'bad_request', /"id" must match pattern/],
      ['GET', '/_ferry/deployments/%E0%A4%A', {}, 400, 'bad_request', /not a valid url/],
      ['GET', `/_ferry/deployments/${'a'.repeat(300)}`, {}, 400, 'bad_request', /./],
      [
        'GET',
        '/_ferry/deployments/api/metrics?format=xml',
        {},
        400,
        'bad_request',
        /"format" must be one of text, json/,
      ],
      [
        'POST',
        '/_ferry/deployments/api/hibernate',
        { headers: { origin: 'https://evil.example' } },
        403,
        'forbidden',
        /cross-origin/,
      ],
    ];
    for (const [method, path, init, status, code, message] of cases) {
      const res = await raw(method, path, init);
      const body = (await res.json()) as any;
      assert.equal(res.status, status, `${method} ${path.slice(0, 60)}: ${JSON.stringify(body).slice(0, 200)}`);
      assert.equal(body.code, code, path.slice(0, 60));
      assert.match(body.error, message, path.slice(0, 60));
    }
    assert.equal((await control(fx.gateway.url, 'GET', '/deployments/api')).json.state, 'running', 'nothing changed');
  });

  test('images only from the allowed registries: another is refused by name before anything is fetched', async () => {
    const image = (registry: string) => ({ registry, repository: 'ferry/mlp', reference: 'v1' });
    for (const spec of [
      { model: 'mlp', replicas: 1, image: image('http://169.254.169.254') },
      {
        model: 'mlp',
        replicas: 1,
        revisions: [
          { name: 'a', modelDir },
          { name: 'b', image: image('https://evil.example:5000') },
        ],
      },
      { model: 'mlp', replicas: 1, image: image('file:///etc/passwd') },
      { model: 'mlp', replicas: 1, image: image('http://127.0.0.1:5999@evil.example') },
    ]) {
      const res = await control(fx.gateway.url, 'PUT', '/deployments/ssrf', spec);
      assert.equal(res.status, 400, JSON.stringify(res.json));
      assert.equal(res.json.code, 'registry_not_allowed', res.json.error);
      const named = (spec.image ?? spec.revisions?.[1].image)!.registry;
      assert.ok(res.json.error.includes(`registry "${named}" is not one this gateway pulls from`), res.json.error);
    }
    assert.deepEqual(pulled, [], 'nothing was fetched');
    // The allowed one is pulled from (here a stand-in that fails, so the PUT fails after trying).
    const ok = await control(fx.gateway.url, 'PUT', '/deployments/ssrf', {
      model: 'mlp',
      replicas: 1,
      image: image(`${ALLOWED}/`),
    });
    assert.equal(ok.status, 500);
    assert.deepEqual(pulled, [`${ALLOWED}/`]);
    assert.equal((await control(fx.gateway.url, 'GET', '/deployments/ssrf')).status, 404);
  });
});
