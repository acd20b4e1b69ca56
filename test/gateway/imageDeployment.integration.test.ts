/**
 * End to end on the local target with a real image: build a model image (runtime layer with the
 * bundled inference server + model layer), push it to the registry, deploy it through the gateway
 * (which pulls and unpacks it and runs its entrypoint as a container: the gateway's default, as root
 * with a runtime installed), infer through the endpoint.
 * Needs the registry at FERRY_REGISTRY_URL (default the dev stack's); skipped only if it is not running.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { buildModelImage, pushImage } from '../../lib/image/modelImage';
import { DeploymentNotFoundError } from '../../lib/targets/deploymentTarget';
import { LocalTarget } from '../../lib/targets/local';
import { registryAnswers } from '../oci/registryFixture';
import { assertAllDead, directOutput, inferThrough, MLP_V1, startTestGateway } from './gatewayFixture';

test('deploys a pushed model image and serves it through the gateway', { timeout: 180_000 }, async () => {
  const registry = loadConfig().registry.url;
  // The suite runs against the real stack: a missing registry is a failure, not a reason to skip.
  assert.ok(
    await registryAnswers(registry),
    `registry at ${registry} is not running (start the dev stack: bash infra/stack.sh start, or set FERRY_REGISTRY_URL)`,
  );
  const fx = await startTestGateway('image-deploy');
  try {
    const onnxPath = path.join(fx.dir, 'mlp.onnx');
    await writeFile(onnxPath, MLP_V1);
    const image = await buildModelImage({
      models: [{ name: 'mlp', version: '1', onnxPath }],
      blobDir: path.join(fx.dir, 'blobs'),
    });
    const repository = `ferry-test/gateway-image-${process.pid}-${Date.now()}`;
    const pushed = await pushImage(image, registry, repository, 'v1');

    const target = new LocalTarget(fx.gateway.url);
    const status = await target.apply({
      id: 'img',
      model: 'mlp',
      replicas: 1,
      image: { registry, repository, reference: pushed.digest },
    });
    assert.equal(status.state, 'running');
    assert.equal(status.image?.digest, pushed.digest);
    const pid = status.replicas[0].pid;
    assert.notEqual(status.replicas[0].runtime, 'process', 'a container runs it');
    // The image's own node runs its entrypoint, seen from inside the container.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(cmdline, ['/usr/bin/node', '/app/server.js']);
    // The onnxruntime it has loaded is the very file unpacked from the image (same inode).
    const imagesDir = path.join(fx.dir, 'state', 'images');
    const [unpacked] = readdirSync(imagesDir);
    const binding = path.join(
      imagesDir,
      unpacked!,
      'rootfs/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
    );
    const mapped = readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .find((l) => l.endsWith('/onnxruntime_binding.node'));
    assert.ok(mapped, 'the replica has onnxruntime loaded');
    assert.equal(
      Number(mapped.split(/\s+/)[4]),
      statSync(binding).ino,
      'the replica runs the onnxruntime unpacked from the image',
    );

    const res = await inferThrough(status.endpoint);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json.outputs[0].data, await directOutput(MLP_V1));
    const meta = (await (await fetch(`${status.endpoint}/v2/models/mlp`)).json()) as any;
    assert.deepEqual(meta.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    assert.match(
      await target.metrics('img'),
      /ferry_inference_requests_total\{replica="\d+",revision="default",model="mlp",version="1"\} 1/,
    );

    // Same spec again: no re-pull, no new replica.
    const again = await target.apply({
      id: 'img',
      model: 'mlp',
      replicas: 1,
      image: { registry, repository, reference: pushed.digest },
    });
    assert.equal(again.replicas[0].pid, pid);

    // Hibernated image deployments wake from the unpacked rootfs without the registry.
    await target.hibernate('img');
    await assertAllDead([pid], 'hibernate');
    assert.equal((await inferThrough(status.endpoint)).status, 200);

    await target.destroy('img');
    await assert.rejects(target.status('img'), DeploymentNotFoundError);
  } finally {
    await fx.cleanup();
  }
});
