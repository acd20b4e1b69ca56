/**
 * Unpacked image trees under the gateway's state dir (`<stateDir>/images/<ref>/`) are removed once
 * nothing uses them: at start (trees an earlier gateway left), and after an apply or a delete retires
 * the last revision and replica running one — never a tree a live revision uses. A tree is read-only and
 * sealed as its verified layers made it: one modified afterwards starts no replica. Needs the stack's
 * registry.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { buildModelImage, pushImage } from '../../lib/image/modelImage';
import { removeUnusedImageTrees } from '../../lib/oci/pull';
import type { ImageRef } from '../../lib/targets/deploymentTarget';
import { LocalTarget } from '../../lib/targets/local';
import {
  eventually,
  type GatewayFixture,
  inferThrough,
  MLP_V1,
  MLP_V2,
  startTestGateway,
  tempDir,
} from './gatewayFixture';

test('removeUnusedImageTrees keeps the folders named (or holding a path named) and removes the rest', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-image-trees-'));
  try {
    for (const name of ['a', 'b', 'c']) await mkdir(path.join(dir, name, 'rootfs', 'app'), { recursive: true });
    await writeFile(path.join(dir, 'not-a-tree.txt'), 'x');
    const removed = await removeUnusedImageTrees(dir, [path.join(dir, 'a', 'rootfs', 'app'), path.join(dir, 'b')]);
    assert.deepEqual(removed, [path.join(dir, 'c')]);
    assert.deepEqual(readdirSync(dir).sort(), ['a', 'b', 'not-a-tree.txt']);
    assert.deepEqual(await removeUnusedImageTrees(path.join(dir, 'missing'), []), []);
    // A path outside the folder protects nothing in it.
    assert.deepEqual((await removeUnusedImageTrees(dir, ['/elsewhere/a'])).sort(), [
      path.join(dir, 'a'),
      path.join(dir, 'b'),
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('the gateway removes unpacked images nothing uses', { timeout: 180_000 }, () => {
  const registry = loadConfig().registry.url;
  let fx: GatewayFixture;
  let target: LocalTarget;
  let v1: ImageRef;
  let v2: ImageRef;
  const imagesDir = () => path.join(fx.dir, 'state', 'images');
  const trees = () => (existsSync(imagesDir()) ? readdirSync(imagesDir()).sort() : []);
  const treeOf = (ref: ImageRef) => trees().find((t) => t.endsWith(`@${ref.reference}`));

  before(async () => {
    const work = await tempDir('image-trees-build');
    try {
      const repository = `ferry-test/image-trees-${process.pid}-${Date.now()}`;
      const push = async (tag: string, bytes: Uint8Array): Promise<ImageRef> => {
        const onnxPath = path.join(work, `${tag}.onnx`);
        await writeFile(onnxPath, bytes);
        const image = await buildModelImage({
          models: [{ name: 'mlp', version: tag, onnxPath }],
          blobDir: path.join(work, 'blobs'),
        });
        await pushImage(image, registry, repository, tag);
        return { registry, repository, reference: tag };
      };
      v1 = await push('v1', MLP_V1);
      v2 = await push('v2', MLP_V2);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    // A tree left by an earlier gateway, which no deployment names.
    const dir = await tempDir('image-trees');
    await mkdir(path.join(dir, 'state', 'images', 'stale@v0', 'rootfs', 'app'), { recursive: true });
    fx = await startTestGateway('image-trees', { stateDir: path.join(dir, 'state') });
    await rm(fx.dir, { recursive: true, force: true }); // the fixture's own folder, unused
    fx.dir = dir;
    target = new LocalTarget(fx.gateway.url);
  });
  after(() => fx?.cleanup());

  test('at start, a tree no deployment uses is removed', () => {
    assert.deepEqual(trees(), []);
    assert.ok(fx.logs.some((l) => /removed the unpacked image stale@v0/.test(l)));
  });

  test('a tree goes when its last revision is replaced or deleted, not while another deployment uses it', async () => {
    const a = await target.apply({ id: 'a', model: 'mlp', replicas: 1, image: v1 });
    await target.apply({ id: 'b', model: 'mlp', replicas: 1, image: v2 });
    assert.ok(treeOf(v1) && treeOf(v2), trees().join(', '));

    // "a" moves to v2: v1's tree goes once its replica has stopped; v2's stays (both use it).
    await target.apply({ id: 'a', model: 'mlp', replicas: 1, image: v2 });
    await eventually('v1 tree removed', () => treeOf(v1) === undefined);
    assert.ok(treeOf(v2));
    assert.equal((await inferThrough(a.endpoint)).status, 200, 'a serves from the v2 tree');

    // Deleting "a" leaves v2 to "b", which still serves (and wakes) from it.
    await target.destroy('a');
    await target.hibernate('b');
    await new Promise((r) => setTimeout(r, 300)); // a collection would have run by now
    assert.ok(treeOf(v2), 'a hibernated revision keeps its tree');
    const b = await target.status('b');
    assert.equal((await inferThrough(b.endpoint)).status, 200, 'b wakes from its tree');

    await target.destroy('b');
    await eventually('v2 tree removed', () => treeOf(v2) === undefined);
    assert.deepEqual(trees(), []);
  });

  test('the tree is read-only, and a file changed in it stops the next replica with the reason', async () => {
    const c = await target.apply({ id: 'c', model: 'mlp', replicas: 1, image: v1 });
    const rootfs = path.join(imagesDir(), treeOf(v1)!, 'rootfs');
    const files = (await readdir(rootfs, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    assert.ok(files.length > 3, `${files.length} files`);
    for (const e of files)
      assert.equal(statSync(path.join(e.parentPath, e.name)).mode & 0o222, 0, `${e.name} is read-only`);
    assert.equal(statSync(rootfs).mode & 0o222, 0, 'so are the folders');
    assert.equal((await inferThrough(c.endpoint)).status, 200);

    // While it sleeps, someone with the right to (root here) changes the model in the tree.
    await target.hibernate('c');
    const model = files.find((e) => e.name.endsWith('.onnx'))!;
    const modelPath = path.join(model.parentPath, model.name);
    await chmod(modelPath, 0o644);
    await appendFile(modelPath, Buffer.from([0]));
    const rel = path.relative(rootfs, modelPath);

    await assert.rejects(target.wake('c'));
    const status = await target.status('c');
    assert.equal(status.replicas.length, 0, 'no replica started from the modified tree');
    const refused = status.events.filter((e) => e.type === 'start-failed').at(-1);
    assert.ok(refused, JSON.stringify(status.events));
    assert.match(refused.reason, /was modified after it was checked against its layer digests/);
    assert.ok(
      refused.reason.includes(`${rel} has mode 644`) || refused.reason.includes(`${rel} has other content`),
      refused.reason,
    );
    assert.ok(fx.logs.some((l) => l.includes(rel) && l.includes('no replica starts from it')));

    // Deleting the deployment removes the read-only tree as any other.
    await target.destroy('c');
    await eventually('the modified tree removed', () => treeOf(v1) === undefined);
  });
});
