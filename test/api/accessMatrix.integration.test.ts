/**
 * Every route of the API, tried with no key, an unknown key, a key without the route's scope, and another
 * project's key — walked from the app's own route table, so a route added later is tried too. Runs the
 * real app (fastify.inject) against the dev stack's PostgreSQL and Temporal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApiApp } from '../../client/api/app';
import { FerryClient, UnknownDeploymentError } from '../../client/sdk';
import { applyMigrations } from '../../infra/migrate';
import { generateApiKey } from '../../lib/auth/apiKey';
import { AuditLog } from '../../lib/auth/audit';
import { signChatopsRequest } from '../../lib/auth/chatopsSignature';
import { KeyStore } from '../../lib/auth/keyStore';
import { ModelOwnership } from '../../lib/auth/modelOwnership';
import { SCOPES, type Scope } from '../../lib/auth/scopes';
import { loadConfig } from '../../lib/config';
import { closePools, getPool } from '../../lib/db/pool';

const config = loadConfig();
const run = Date.now().toString(36);
const owner = `own-${run}`;
const stranger = `other-${run}`;
const model = `matrix-${run}`;
const chatopsSecret = `matrix-secret-${run}`;
let app: FastifyInstance;
let ferry: FerryClient;
let keys: KeyStore;
const key: Record<string, string> = {};

before(async () => {
  await applyMigrations(config.postgres.url);
  const pool = getPool(config.postgres.url);
  keys = new KeyStore(pool);
  const ownership = new ModelOwnership(pool);
  await ownership.claim(model, owner);
  ferry = await FerryClient.connect(config);
  app = await buildApiApp({
    config,
    ferry,
    keys,
    audit: new AuditLog(pool),
    ownership,
    auth: true,
    verifyKey: (k) => keys.verify(k),
    rateLimit: { perSecond: 1000, burst: 1000 },
    maxModelBytes: 1024,
    chatopsSecret,
    allowedOrigins: ['http://127.0.0.1:8090'],
    deploymentView: async () => ({}),
  });
  await app.ready();
  const nonAdmin = SCOPES.filter((s) => s !== 'admin');
  key.strangerAll = (await keys.createKey({ project: stranger, name: 'all', scopes: nonAdmin })).key;
  for (const scope of SCOPES) {
    const others = SCOPES.filter((s) => s !== scope && s !== 'admin');
    key[`without-${scope}`] = (await keys.createKey({ project: owner, name: `no-${scope}`, scopes: others })).key;
  }
});
after(async () => {
  await app?.close();
  await ferry?.close();
  await closePools();
});

/** A concrete request for a route: a deployment of the owner's model, a key id, a valid body. */
function requestFor(route: { method: string; url: string }) {
  const url = route.url.replace(':deployment', `${model}:v1`).replace(':ref', '1');
  const body =
    route.method === 'GET' || route.method === 'DELETE'
      ? undefined
      : url.endsWith('/approve')
        ? { plan: 'original' }
        : url.endsWith('/promote')
          ? { revision: 'stable' }
          : url === '/api/keys'
            ? { project: owner, scopes: ['read'] }
            : {};
  const query = route.url === '/api/deployments' && route.method === 'POST' ? `?name=${model}` : '';
  return { method: route.method as 'GET', url: url + query, payload: body };
}

describe('access matrix', () => {
  it('covers every registered route, and only hidden routes are left out of the OpenAPI document', async () => {
    const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)),
    );
    const routes = app.routeTable.filter((r) => !r.url.startsWith('/docs'));
    assert.ok(routes.length >= 14, `${routes.length} routes`);
    for (const r of routes) {
      const openApiPath = r.url.replace(/:(\w+)/g, '{$1}');
      if (r.hidden)
        assert.ok(r.access.public, `${r.method} ${r.url} is hidden from the document, so it must be public`);
      else
        assert.ok(documented.has(`${r.method} ${openApiPath}`), `${r.method} ${r.url} is missing from /openapi.json`);
      assert.ok(r.access.public || r.access.scope, `${r.method} ${r.url} declares neither a scope nor public`);
    }
  });

  it('answers 401 without a key or with an unknown one, 403 without the scope, 404 to another project', async () => {
    const guarded = app.routeTable.filter((r) => !r.access.public);
    assert.ok(guarded.length >= 12, `${guarded.length} guarded routes`);
    for (const r of guarded) {
      const req = requestFor(r);
      const none = await app.inject(req);
      assert.equal(none.statusCode, 401, `${r.method} ${r.url} without a key: ${none.body}`);
      assert.match(String(none.headers['www-authenticate']), /Bearer/);

      const unknown = await app.inject({ ...req, headers: { authorization: `Bearer ${generateApiKey()}` } });
      assert.equal(unknown.statusCode, 401, `${r.method} ${r.url} with an unknown key`);

      const scope = r.access.scope as Scope;
      const lacking = await app.inject({ ...req, headers: { authorization: `Bearer ${key[`without-${scope}`]}` } });
      assert.equal(lacking.statusCode, 403, `${r.method} ${r.url} without "${scope}": ${lacking.body}`);
      assert.match(lacking.json().error, new RegExp(`"${scope}"`));

      if (r.url.includes(':deployment')) {
        const other = await app.inject({ ...req, headers: { authorization: `Bearer ${key.strangerAll}` } });
        assert.equal(other.statusCode, 404, `${r.method} ${r.url} with another project's key: ${other.body}`);
        assert.ok(!other.body.includes(owner), 'the answer names nothing of the other project');
      }
    }
  });

  it('lists nothing of another project, and a stranger cannot deploy under a taken model name', async () => {
    const list = await app.inject({
      method: 'GET',
      url: '/api/deployments',
      headers: { authorization: `Bearer ${key.strangerAll}` },
    });
    assert.equal(list.statusCode, 200);
    assert.ok(!list.body.includes(model));
    const taken = await app.inject({
      method: 'POST',
      url: `/api/deployments?name=${model}`,
      headers: { authorization: `Bearer ${key.strangerAll}`, 'content-type': 'application/octet-stream' },
      payload: Buffer.from('onnx'),
    });
    assert.equal(taken.statusCode, 409, taken.body);
  });

  it('refuses bad input with 4xx, never 500: bad escapes, null bodies, long names, deep JSON, cross-origin', async () => {
    const auth = { authorization: `Bearer ${key['without-admin']}` };
    const cases: Array<[string, InjectOptions, number]> = [
      ['bad % escape', { method: 'GET', url: '/api/deployments/%E0%A4%A', headers: auth }, 400],
      ['name over 255', { method: 'GET', url: `/api/deployments/${'a'.repeat(300)}`, headers: auth }, 414],
      ['markup in a name', { method: 'GET', url: '/api/deployments/%3Cscript%3E', headers: auth }, 400],
      [
        'null body',
        {
          method: 'POST',
          url: `/api/deployments/${model}:v1/approve`,
          headers: { ...auth, 'content-type': 'application/json' },
          payload: 'null',
        },
        400,
      ],
      [
        'deep JSON',
        {
          method: 'POST',
          url: `/api/deployments/${model}:v1/approve`,
          headers: { ...auth, 'content-type': 'application/json' },
          payload: `${'['.repeat(5000)}${']'.repeat(5000)}`,
        },
        400,
      ],
      [
        'traversal in the upload name',
        {
          method: 'POST',
          url: '/api/deployments?name=../../x',
          headers: { ...auth, 'content-type': 'application/octet-stream' },
          payload: Buffer.from('x'),
        },
        400,
      ],
      [
        'cross-origin POST',
        {
          method: 'POST',
          url: `/api/deployments/${model}:v1/rollback`,
          headers: { ...auth, origin: 'https://evil.example' },
        },
        403,
      ],
      [
        'oversized JSON',
        {
          method: 'POST',
          url: `/api/deployments/${model}:v1/approve`,
          headers: { ...auth, 'content-type': 'application/json' },
          payload: `{"plan":"${'x'.repeat(2 * 1024 * 1024)}"}`,
        },
        413,
      ],
    ];
    for (const [what, req, status] of cases) {
      const res = await app.inject(req);
      assert.equal(res.statusCode, status, `${what}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      assert.equal(typeof res.json().error, 'string', what);
    }
  });

  it('answers an unknown deployment with a fast 404, and an approval of one with 404, not 400', async () => {
    const auth = { authorization: `Bearer ${key['without-admin']}` };
    // The owner's model exists, so these are asked of Temporal: by run id, with no wait for visibility.
    const refs = [`${model}-nope`, `${model}:nope`, `deploy:${model}:nope`, model, `nomodel-${run}`];
    for (const ref of refs) {
      const t0 = performance.now();
      const res = await app.inject({
        method: 'GET',
        url: `/api/deployments/${encodeURIComponent(ref)}`,
        headers: auth,
      });
      const ms = performance.now() - t0;
      assert.equal(res.statusCode, 404, `${ref}: ${res.body}`);
      assert.deepEqual(res.json(), { error: `no deployment "${ref}"` });
      assert.ok(ms < 500, `${ref} answered in ${ms.toFixed(0)} ms`);
    }
    for (const ref of [`${model}-nope`, model]) {
      const t0 = performance.now();
      await assert.rejects(ferry.resolve(ref), UnknownDeploymentError);
      const ms = performance.now() - t0;
      assert.ok(ms < 500, `the SDK says no to ${ref} in ${ms.toFixed(0)} ms`);
    }

    const approve = await app.inject({
      method: 'POST',
      url: `/api/deployments/${model}:nope/approve`,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: { plan: 'original' },
    });
    assert.equal(approve.statusCode, 404, approve.body);
    const at = Math.floor(Date.now() / 1000);
    for (const deployment of [`${model}:nope`, `nomodel-${run}`]) {
      const raw = JSON.stringify({ deployment, plan: 'original', user: 'carol' });
      const chat = await app.inject({
        method: 'POST',
        url: '/api/chatops/approve',
        headers: {
          'content-type': 'application/json',
          'x-slack-request-timestamp': String(at),
          'x-slack-signature': signChatopsRequest(chatopsSecret, at, raw),
        },
        payload: raw,
      });
      assert.equal(chat.statusCode, 404, `chat-ops approval of ${deployment}: ${chat.body}`);
      assert.equal(chat.json().accepted, undefined, 'nothing says it was accepted');
    }
  });
});
