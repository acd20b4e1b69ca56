/**
 * Projects end to end on the real stack, with auth on (the default): a deploy through the API with a
 * project's key belongs to that project — in PostgreSQL (models.project, deployments.project), in the
 * gateway's spec, and so for inference — and another project's key gets the same 404 as for a deployment
 * that does not exist, on every route. `ferry deploy --project P --public` records both, and its inference
 * needs no key. The worker and the gateway use the bootstrap admin key the harness's state dir holds.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startApiServer } from '../../client/api/server';
import { KeyStore } from '../../lib/auth/keyStore';
import { closePools, getPool } from '../../lib/db/pool';
import { type FerryHarness, freePort, startHarness } from '../helpers/ferryHarness';

const exec = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');
const run = Date.now().toString(36);
const project = `pipe-${run}`;
const strangerProject = `pipx-${run}`;
const SCOPES = ['deploy', 'read', 'infer', 'approve', 'operate'] as const;
const key: Record<string, string> = {};
let h: FerryHarness;
let api: { url: string; close(): Promise<void> };

before(async () => {
  h = await startHarness('pipeaccess');
  const keys = new KeyStore(getPool(h.config.postgres.url));
  key.owner = (await keys.createKey({ project, name: 'team', scopes: [...SCOPES] })).key;
  key.infer = (await keys.createKey({ project, name: 'infer', scopes: ['infer'] })).key;
  key.stranger = (await keys.createKey({ project: strangerProject, name: 'all', scopes: [...SCOPES] })).key;
  await h.startWorker();
  api = await startApiServer(h.config, await freePort());
});
after(async () => {
  await api?.close();
  await h?.close();
  await getPool(h.config.postgres.url)
    .query('UPDATE api_keys SET revoked_at = now() WHERE project = ANY($1) AND revoked_at IS NULL', [
      [project, strangerProject],
    ])
    .catch(() => {});
  await closePools();
});

const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

async function rowOf(deploymentId: string) {
  const { rows } = await getPool(h.config.postgres.url).query(
    `SELECT d.project, d.public, m.project AS model_project FROM deployments d
     JOIN model_versions mv ON mv.id = d.model_version_id JOIN models m ON m.id = mv.model_id WHERE d.id = $1`,
    [deploymentId],
  );
  return rows[0] as { project: string; public: boolean; model_project: string } | undefined;
}

function infer(url: string, headers: Record<string, string>) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 0, 0, 1, 0.5, 0, 0, 2] }],
    }),
  });
}

test("a project key's deploy belongs to its project; another project's key learns nothing of it", async () => {
  const name = `pa-${h.runId}`;
  const bytes = await readFile(await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3, seed: 5 }));
  const upload = (k: string, query = '') =>
    fetch(`${api.url}/api/deployments?name=${name}${query}`, {
      method: 'POST',
      headers: { ...bearer(k), 'content-type': 'application/octet-stream' },
      body: bytes,
    });
  const elsewhere = await upload(key.owner, `&project=${strangerProject}`);
  assert.equal(elsewhere.status, 403, 'a project key deploys into its own project only');
  const started = await upload(key.owner);
  assert.equal(started.status, 200, await started.clone().text());
  const { deploymentId } = (await started.json()) as { deploymentId: string };
  const status = await h.ferry.waitForResult(deploymentId);
  assert.equal(status.phase, 'live', JSON.stringify(status.stages));

  assert.deepEqual(await rowOf(deploymentId), { project, public: false, model_project: project });
  const served = await h.gatewayStatus(deploymentId);
  assert.equal(served.status, 200);
  assert.deepEqual(served.body.spec.access, { project, public: false });

  assert.equal((await infer(status.inferUrl!, {})).status, 401);
  assert.equal((await infer(status.inferUrl!, bearer(key.stranger))).status, 404);
  const ok = await infer(status.inferUrl!, bearer(key.infer));
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal(((await ok.json()) as any).outputs[0].shape.join(','), '1,3');

  // Every route about it answers another project's key as it answers for a deployment that is not there.
  const unknownId = `${name}-nope`;
  const routes: Array<[string, string, unknown?]> = [
    ['GET', ''],
    ['GET', '/progress'],
    ['GET', '/serving'],
    ['POST', '/approve', { plan: 'original' }],
    ['PUT', '/traffic', { split: { stable: 100 } }],
    ['PUT', '/scaling', { replicas: 2 }],
    ['POST', '/undeploy'],
  ];
  for (const [method, suffix, body] of routes) {
    const ask = async (id: string) => {
      const res = await fetch(`${api.url}/api/deployments/${id}${suffix}`, {
        method,
        headers: { ...bearer(key.stranger), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, text: await res.text() };
    };
    const theirs = await ask(deploymentId);
    const nothing = await ask(unknownId);
    assert.equal(theirs.status, 404, `${method} ${suffix}: ${theirs.text}`);
    assert.equal(nothing.status, 404, `${method} ${suffix} of an unknown id: ${nothing.text}`);
    assert.equal(theirs.text.replace(deploymentId, 'ID'), nothing.text.replace(unknownId, 'ID'), 'the same answer');
    assert.ok(!theirs.text.includes(project), 'nothing names the owner');
  }
  const strangerList = await fetch(`${api.url}/api/deployments`, { headers: bearer(key.stranger) });
  assert.ok(!(await strangerList.text()).includes(name), "another project's list leaves it out");
  const strangerAudit = await fetch(`${api.url}/api/audit?deployment=${deploymentId}`, {
    headers: bearer(key.stranger),
  });
  assert.deepEqual(await strangerAudit.json(), [], "another project's audit shows nothing of it");
  const ownerView = await fetch(`${api.url}/api/deployments/${deploymentId}`, { headers: bearer(key.owner) });
  assert.equal(ownerView.status, 200, 'its own project sees it');
  assert.equal((await h.gatewayStatus(deploymentId)).body.spec.replicas ?? 1, 1, 'the stranger changed nothing');

  // The machine's admin CLI cannot take the name for another project either.
  const taken = await ferryCli(['deploy', await h.writeModel(`${name}-2`), '--name', name, '--no-wait']);
  assert.equal(taken.code, 1, taken.out + taken.err);
  assert.match(taken.err, new RegExp(`the model name "${name}" is already used by another project`));
});

async function ferryCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await exec(ferryBin, args, { env: h.env, timeout: 300_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

test('`ferry deploy --project P --public` records both; its inference needs no key', async () => {
  const name = `pp-${h.runId}`;
  const publicProject = `${project}-pub`;
  const file = await h.writeModel(name, { inputDim: 8, hiddenDims: [16], outputDim: 3, seed: 6 });
  const deployed = await ferryCli(['deploy', file, '--name', name, '--project', publicProject, '--public']);
  assert.equal(deployed.code, 0, deployed.out + deployed.err);
  const status = await h.ferry.status(name);
  assert.equal(status.phase, 'live', JSON.stringify(status.stages));
  assert.deepEqual(await rowOf(status.deploymentId), {
    project: publicProject,
    public: true,
    model_project: publicProject,
  });
  assert.deepEqual((await h.gatewayStatus(status.deploymentId)).body.spec.access, {
    project: publicProject,
    public: true,
  });
  const res = await infer(status.inferUrl!, {});
  assert.equal(res.status, 200, await res.text());
  // Public is about inference only: the API still wants a key of its project (or an admin's) to see it.
  const viaApi = await fetch(`${api.url}/api/deployments/${status.deploymentId}`, { headers: bearer(key.stranger) });
  assert.equal(viaApi.status, 404);
});
