/**
 * Keys on the gateway, with the keys in the dev stack's PostgreSQL: every control route (walked from the
 * gateway's own route list, so a route added later is tried too) with no key, an unknown key, a key
 * without the route's scope, and another project's key; projects isolated (another project's deployment
 * is the same 404 as none); inference needs `infer` on the deployment's project unless it is public; the
 * pipeline's own calls (LocalTarget with this machine's key) pass; the per-key rate limit answers 429.
 * (The stack's start applies the migrations, so the key tables are there.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateApiKey } from '../../lib/auth/apiKey';
import { KeyStore } from '../../lib/auth/keyStore';
import { SCOPES, type Scope } from '../../lib/auth/scopes';
import { loadConfig } from '../../lib/config';
import { closePools, getPool } from '../../lib/db/pool';
import { startGateway } from '../../lib/gateway';
import type { ControlRoute } from '../../lib/gateway/controlApi';
import { DeploymentNotFoundError } from '../../lib/targets/deploymentTarget';
import { GatewayRequestError, LocalTarget } from '../../lib/targets/local';
import {
  control,
  eventually,
  type GatewayFixture,
  inferThrough,
  MLP_V1,
  modelDirWith,
  startTestGateway,
  tempDir,
} from './gatewayFixture';

const config = loadConfig();
const run = Date.now().toString(36);
const owner = `gwa-${run}`;
const stranger = `gwb-${run}`;
let keys: KeyStore;
const key: Record<string, string> = {};
let fx: GatewayFixture;
let endpoint: string;
let publicEndpoint: string;
let modelDir: string;
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

before(async () => {
  keys = new KeyStore(getPool(config.postgres.url));
  const nonAdmin = SCOPES.filter((s) => s !== 'admin');
  key.admin = (await keys.createKey({ project: owner, name: 'admin', scopes: ['admin'] })).key;
  key.owner = (await keys.createKey({ project: owner, name: 'all', scopes: nonAdmin })).key;
  key.stranger = (await keys.createKey({ project: stranger, name: 'all', scopes: nonAdmin })).key;
  for (const scope of SCOPES) {
    const others = nonAdmin.filter((s) => s !== scope);
    key[`without-${scope}`] = (await keys.createKey({ project: owner, name: `no-${scope}`, scopes: others })).key;
  }
  fx = await startTestGateway(
    'gw-access',
    {
      standby: false,
      access: {
        auth: true,
        verifyKey: (k) => keys.verify(k),
        cacheTtlMs: 300,
        rateLimit: { perSecond: 1000, burst: 1000 },
      },
    },
    key.admin,
  );
  modelDir = await modelDirWith(MLP_V1, fx.dir);
  const put = async (id: string, isPublic: boolean) => {
    const res = await control(
      fx.gateway.url,
      'PUT',
      `/deployments/${id}`,
      { model: 'mlp', replicas: 1, modelDir, access: { project: owner, public: isPublic } },
      bearer(key.admin),
    );
    assert.equal(res.status, 200, JSON.stringify(res.json));
    return res.json.endpoint as string;
  };
  endpoint = await put('acc', false);
  publicEndpoint = await put('pub', true);
});
after(async () => {
  await fx?.cleanup();
  await closePools();
});

/** Sends a concrete, valid request for a route, on the owner's deployment "acc" (or `id`). */
async function call(r: ControlRoute, headers: Record<string, string>, id = 'acc') {
  const body = r.url.endsWith('/traffic')
    ? { split: { default: 100 } }
    : r.url.endsWith('/scaling')
      ? { replicas: 1 }
      : r.url.endsWith('/drain')
        ? { reason: 'access test' }
        : r.url.endsWith('/floor')
          ? { replicas: 0, ttlMs: 1000 }
          : r.method === 'PUT'
            ? { model: 'mlp', replicas: 1, modelDir }
            : undefined;
  // A pid no replica has: a refused request is refused before the replica is looked up.
  const res = await fetch(`${fx.gateway.url}${r.url.replace(':id', id).replace(':pid', '1')}`, {
    method: r.method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : text, headers: res.headers };
}

describe('gateway access control', () => {
  test('every control route: 401 without a key or with an unknown one, 403 without its scope, 404 to another project', async () => {
    const pidsBefore = (await control(fx.gateway.url, 'GET', '/deployments/acc', undefined, bearer(key.admin))).json
      .replicas;
    const guarded = fx.gateway.controlRoutes.filter((r) => !r.access.public);
    assert.ok(guarded.length >= 11, `${guarded.length} guarded routes`);
    for (const r of guarded) {
      const what = `${r.method} ${r.url}`;
      const none = await call(r, {});
      assert.equal(none.status, 401, `${what} without a key: ${JSON.stringify(none.json)}`);
      assert.equal(none.json.code, 'unauthorized');
      assert.match(String(none.headers.get('www-authenticate')), /^Bearer/);

      const unknown = await call(r, bearer(generateApiKey()));
      assert.equal(unknown.status, 401, `${what} with an unknown key`);

      const scope = r.access.scope as Scope;
      const lacking = await call(r, bearer(key[`without-${scope}`]));
      assert.equal(lacking.status, 403, `${what} without "${scope}": ${JSON.stringify(lacking.json)}`);
      assert.equal(lacking.json.code, 'forbidden');
      assert.match(lacking.json.error, new RegExp(`"${scope}"`));

      if (r.url.includes(':id')) {
        const other = await call(r, bearer(key.stranger));
        assert.equal(other.status, 404, `${what} with another project's key: ${JSON.stringify(other.json)}`);
        assert.deepEqual(other.json, { error: 'no deployment "acc"', code: 'deployment_not_found' });
        if (r.method !== 'DELETE' && r.method !== 'PUT') {
          // The same answer as for a deployment that does not exist at all.
          const nothing = await call(r, bearer(key.owner), 'nope');
          assert.deepEqual(nothing.json, { error: 'no deployment "nope"', code: 'deployment_not_found' }, what);
        }
      }
    }
    const after = (await control(fx.gateway.url, 'GET', '/deployments/acc', undefined, bearer(key.admin))).json;
    assert.equal(after.state, 'running', 'no refused request changed anything');
    assert.deepEqual(after.replicas, pidsBefore);
    assert.deepEqual(after.spec.access, { project: owner, public: false });
  });

  test('a project sees and changes only its own deployments; keys deploy into their own project only', async () => {
    const ids = async (k: string) =>
      (await control(fx.gateway.url, 'GET', '/deployments', undefined, bearer(k))).json.deployments
        .map((d: { id: string }) => d.id)
        .sort();
    assert.deepEqual(await ids(key.owner), ['acc', 'pub']);
    assert.deepEqual(await ids(key.stranger), []);
    assert.deepEqual(await ids(key.admin), ['acc', 'pub']);

    const traffic = await control(
      fx.gateway.url,
      'PUT',
      '/deployments/acc/traffic',
      { split: { default: 100 } },
      bearer(key.owner),
    );
    assert.equal(traffic.status, 200, JSON.stringify(traffic.json));
    const spec = (await control(fx.gateway.url, 'GET', '/deployments/acc', undefined, bearer(key.owner))).json.spec;
    const intoOther = await control(
      fx.gateway.url,
      'PUT',
      '/deployments/acc',
      { ...spec, access: { project: stranger, public: false } },
      bearer(key.owner),
    );
    assert.equal(intoOther.status, 403, JSON.stringify(intoOther.json));
    assert.match(intoOther.json.error, new RegExp(`belongs to project "${owner}" and can only deploy into it`));
    const changeWithoutOperate = await control(
      fx.gateway.url,
      'PUT',
      '/deployments/acc',
      spec,
      bearer(key['without-operate']),
    );
    assert.equal(changeWithoutOperate.status, 403, 'changing a live deployment needs operate');
    assert.match(changeWithoutOperate.json.error, /"operate"/);
    // Re-applying its own spec (the canary and scale paths do) keeps its access.
    const same = await control(fx.gateway.url, 'PUT', '/deployments/acc', spec, bearer(key.owner));
    assert.equal(same.status, 200);
    assert.deepEqual(same.json.spec.access, { project: owner, public: false });
  });

  test('inference needs infer on the deployment’s project, unless it is public; another project gets the 404 of none', async () => {
    assert.equal((await inferThrough(endpoint, bearer(key.owner))).status, 200);
    assert.equal((await inferThrough(endpoint, bearer(key.admin))).status, 200, 'admin implies infer');
    assert.equal((await inferThrough(publicEndpoint)).status, 200, 'a public deployment needs no key');
    assert.equal((await inferThrough(publicEndpoint, bearer(key.stranger))).status, 200);

    const none = await inferThrough(endpoint);
    assert.equal(none.status, 401);
    assert.match(String(none.headers.get('www-authenticate')), /^Bearer/);
    assert.equal((await inferThrough(endpoint, bearer(generateApiKey()))).status, 401);
    assert.equal((await inferThrough(endpoint, { authorization: 'Basic dTpw' })).status, 401);
    const lacking = await inferThrough(endpoint, bearer(key['without-infer']));
    assert.equal(lacking.status, 403);
    assert.match(lacking.json.error, /"infer"/);
    const other = await inferThrough(endpoint, bearer(key.stranger));
    const nothing = await inferThrough(endpoint.replace(/\/d\/acc$/, '/d/nope'), bearer(key.stranger));
    assert.equal(other.status, 404);
    assert.deepEqual(other.json, { error: 'no deployment "acc" on this gateway' });
    assert.deepEqual(nothing.json, { error: 'no deployment "nope" on this gateway' });
    // Without a valid key, a deployment that is not there answers as a keyed one does: existence takes a key.
    for (const headers of [{}, bearer(generateApiKey())]) {
      const absent = await inferThrough(endpoint.replace(/\/d\/acc$/, '/d/nope'), headers);
      const keyed = await inferThrough(endpoint, headers);
      assert.equal(absent.status, 401);
      assert.deepEqual(
        [absent.json, absent.headers.get('www-authenticate')],
        [keyed.json, keyed.headers.get('www-authenticate')],
      );
    }
  });

  test('a refused request does not wake a hibernated deployment; a revoked key stops working within the cache time', async () => {
    const hib = await control(fx.gateway.url, 'POST', '/deployments/acc/hibernate', undefined, bearer(key.admin));
    assert.equal(hib.status, 200);
    assert.equal((await inferThrough(endpoint)).status, 401);
    assert.equal((await inferThrough(endpoint, bearer(key.stranger))).status, 404);
    const still = (await control(fx.gateway.url, 'GET', '/deployments/acc', undefined, bearer(key.admin))).json;
    assert.equal(still.state, 'hibernated');
    assert.deepEqual(still.replicas, []);

    const doomed = (await keys.createKey({ project: owner, name: `doomed-${run}`, scopes: ['infer'] })).key;
    assert.equal((await inferThrough(endpoint, bearer(doomed))).status, 200, 'and this one wakes it');
    await keys.revokeKey(`${owner}/doomed-${run}`);
    await eventually(
      'the revoked key to be refused',
      async () => (await inferThrough(endpoint, bearer(doomed))).status === 401,
      5000,
    );
  });

  test("the pipeline's calls (LocalTarget with this machine's key) pass; without a key they are refused", async () => {
    const withKey = new LocalTarget(fx.gateway.url, async () => key.admin);
    assert.equal((await withKey.status('acc')).id, 'acc');
    await assert.rejects(withKey.status('nope'), DeploymentNotFoundError);
    const keyless = new LocalTarget(fx.gateway.url);
    await assert.rejects(
      keyless.status('acc'),
      (err) => err instanceof GatewayRequestError && err.status === 401 && err.code === 'unauthorized',
    );
    const ownerTarget = new LocalTarget(fx.gateway.url, async () => key.owner);
    assert.deepEqual((await ownerTarget.list()).map((d) => d.id).sort(), ['acc', 'pub']);
  });

  test('the per-key rate limit answers 429 with Retry-After', async () => {
    const dir = await tempDir('gw-rate');
    const gw = await startGateway({
      port: 0,
      stateDir: `${dir}/state`,
      standby: false,
      log: () => {},
      access: { auth: true, verifyKey: (k) => keys.verify(k), rateLimit: { perSecond: 0.5, burst: 2 } },
    });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 3; i++) {
        const res = await control(gw.url, 'GET', '/deployments', undefined, bearer(key.owner));
        statuses.push(res.status);
        retryAfter = res.headers.get('retry-after');
      }
      assert.deepEqual(statuses, [200, 200, 429]);
      assert.equal(retryAfter, '2');
      assert.equal(
        (await control(gw.url, 'GET', '/deployments', undefined, bearer(key.stranger))).status,
        200,
        'per key',
      );
    } finally {
      await gw.close();
    }
  });
});
