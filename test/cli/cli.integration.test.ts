/**
 * The `ferry` command line as a user runs it: deploy (stages printed as they advance), status, list,
 * infer from a JSON file, a refused approval (exit code and message), undeploy, and bad input.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type FerryHarness, startHarness } from '../helpers/ferryHarness';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');

let h: FerryHarness;
before(async () => {
  h = await startHarness('cli');
  await h.startWorker();
});
after(async () => h?.close());

async function ferry(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(ferryBin, args, { env: h.env, timeout: 180_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

test('deploy, status, list, infer, refused approve, undeploy through the CLI', async () => {
  const name = `cli-${h.runId}`;
  const file = await h.writeModel(name, { inputDim: 6, hiddenDims: [12], outputDim: 2, seed: 6 });

  const deployed = await ferry('deploy', file, '--name', name);
  assert.equal(deployed.code, 0, deployed.out);
  for (const stage of ['upload', 'optimize', 'container', 'deploy', 'monitor']) {
    assert.match(deployed.out, new RegExp(`ok\\s+${stage}`), `stage ${stage} reported`);
  }
  const endpoint = /Endpoint:\s+(\S+)/.exec(deployed.out)?.[1];
  assert.ok(endpoint?.startsWith('http://127.0.0.1:'), deployed.out);
  assert.match(deployed.out, /Temporal UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/deploy%3A/);

  const status = await ferry('status', name, '--json');
  assert.equal(status.code, 0, status.out);
  const parsed = JSON.parse(status.out.slice(status.out.indexOf('{')));
  assert.equal(parsed.phase, 'live');
  assert.equal(parsed.serving.servingState, 'running');

  const list = await ferry('list');
  assert.match(list.out, new RegExp(`${parsed.deploymentId}\\s+live`));

  const input = path.join(h.tmpDir, 'request.json');
  await writeFile(
    input,
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, 6], datatype: 'FP32', data: [1, 0, -1, 0.5, 0.25, 2] }] }),
  );
  const inferred = await ferry('infer', parsed.deploymentId, '--input', input);
  assert.equal(inferred.code, 0, inferred.out);
  const answer = JSON.parse(inferred.out.slice(inferred.out.indexOf('{')));
  assert.deepEqual(answer.outputs[0].shape, [1, 2]);

  await writeFile(
    input,
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] }),
  );
  const wrongShape = await ferry('infer', parsed.deploymentId, '--input', input);
  assert.equal(wrongShape.code, 1);
  assert.match(wrongShape.out, /inference failed \(400\): .*shape/);

  const refused = await ferry('approve', parsed.deploymentId, '--plan', 'original');
  assert.equal(refused.code, 1);
  assert.match(refused.out, /approval refused: .*one-click mode|not waiting/);

  const unknown = await ferry('status', 'no-such-model-anywhere');
  assert.equal(unknown.code, 1);
  assert.match(unknown.out, /no deployment "no-such-model-anywhere"/);

  const missingFile = await ferry('deploy', path.join(h.tmpDir, 'absent.onnx'));
  assert.equal(missingFile.code, 1);
  assert.match(missingFile.out, /does not exist/);

  const undeployed = await ferry('undeploy', parsed.deploymentId);
  assert.equal(undeployed.code, 0, undeployed.out);
  assert.equal((await h.gatewayStatus(parsed.deploymentId)).status, 404);
});
