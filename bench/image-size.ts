/**
 * Image size and what a model update costs to push.
 *
 *   npx tsx bench/image-size.ts        (needs the registry of the dev stack: bash infra/stack.sh start)
 *
 * 1. Ferry's runtime layer per architecture (node, its C libraries, onnxruntime, /etc), uncompressed and
 *    gzip, for the inference image and the edge image (no CA certificates), and the program layer of each
 *    image kind (inference server, edge server without OpenTelemetry, batch runner), next to what a user
 *    would ship for the same job: node:20-bookworm-slim plus onnxruntime-node
 *    as `npm ci --omit=dev` installs it (the whole package: every platform's binaries). The base image's
 *    size is the published one (see PUBLISHED_BASE); the onnxruntime-node layer is measured here, with
 *    the same tar and gzip settings as Ferry's layers.
 * 2. The bytes pushed for a new version of a ~100 MB model when the previous image (both architectures)
 *    is in the registry: the goal is that only the model layer moves, plus a few hundred bytes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../lib/config';
import { IMAGE_KINDS, imageKind } from '../lib/image/imageKinds';
import { buildModelImageIndex, IMAGE_ARCHITECTURES, pushImage } from '../lib/image/modelImage';
import { buildRuntimeLayer, buildServerLayer } from '../lib/image/runtimeLayer';
import { BlobLocations } from '../lib/oci/blobLocations';
import { directoryEntries, writeLayer } from '../lib/oci/layer';
import { registryAnswers } from '../test/oci/registryFixture';
import { mlpModel } from '../test/runtime/onnxTestModels';

/**
 * node:20-bookworm-slim's own figures were not in the material the search tool had, so these are the
 * closest published ones, an estimate for Node 20 (whose binary is a little smaller than 22's):
 * compressed: Docker Hub's tag list for node:22.23.4-slim (= 22-bookworm-slim), linux/amd64 76.15 MB,
 * linux/arm64/v8 76.18 MB (hub.docker.com/_/node/tags?name=22.23.4); uncompressed: `docker images`
 * shows node:22-slim at 220 MB (labs.iximiuz.com/tutorials/how-to-choose-nodejs-container-image).
 */
const PUBLISHED_BASE = {
  name: 'node:22-bookworm-slim (published; stands in for node:20-bookworm-slim)',
  compressed: { amd64: 76.15e6, arm64: 76.18e6 },
  uncompressed: 220e6,
};

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const config = loadConfig();
  const work = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-image-size-'));
  try {
    // 1. Runtime layers against the base image a user would start from.
    const ortLayer = await writeLayer(
      [
        ...(await directoryEntries(
          path.join(config.repoRoot, 'node_modules/onnxruntime-node'),
          '/app/node_modules/onnxruntime-node',
        )),
        ...(await directoryEntries(
          path.join(config.repoRoot, 'node_modules/onnxruntime-common'),
          '/app/node_modules/onnxruntime-common',
        )),
      ],
      path.join(work, 'ort-layer'),
    );
    const row = (label: string, layer: { uncompressedSize: number; size: number }) =>
      console.log(
        `  ${label.padEnd(40)} ${String(layer.uncompressedSize).padStart(11)} B ${String(layer.size).padStart(10)} B   (${mb(layer.uncompressedSize)}, ${mb(layer.size)} gzip)`,
      );
    const programs = new Map<string, { uncompressedSize: number; size: number }>();
    for (const kind of IMAGE_KINDS) programs.set(kind, await buildServerLayer({ kind }));
    console.log(`${'layer (Ferry)'.padEnd(42)} ${'uncompressed'.padStart(13)} ${'gzip'.padStart(12)}`);
    for (const architecture of IMAGE_ARCHITECTURES) {
      const inference = await buildRuntimeLayer({ architecture });
      const edge = await buildRuntimeLayer({ architecture, caCertificates: imageKind('edge').caCertificates });
      row(`runtime linux/${architecture} (inference, batch)`, inference);
      row(`runtime linux/${architecture} (edge)`, edge);
      for (const [kind, runtime] of [
        ['inference', inference],
        ['edge', edge],
      ] as const) {
        const program = programs.get(kind)!;
        row(`  runtime + ${imageKind(kind).programInImage} (${kind})`, {
          uncompressedSize: runtime.uncompressedSize + program.uncompressedSize,
          size: runtime.size + program.size,
        });
      }
    }
    for (const kind of IMAGE_KINDS) row(`program ${imageKind(kind).programInImage} (${kind})`, programs.get(kind)!);
    console.log(`\nwhat a user would build: ${PUBLISHED_BASE.name} + npm ci onnxruntime-node`);
    console.log(
      `  onnxruntime-node + onnxruntime-common layer (measured): ${mb(ortLayer.uncompressedSize)}, ${mb(ortLayer.size)} gzip`,
    );
    for (const architecture of IMAGE_ARCHITECTURES) {
      const compressed = PUBLISHED_BASE.compressed[architecture] + ortLayer.size;
      console.log(
        `  linux/${architecture.padEnd(5)} base + onnxruntime: ~${mb(PUBLISHED_BASE.uncompressed + ortLayer.uncompressedSize)} uncompressed, ~${mb(compressed)} compressed`,
      );
    }

    // 2. A new version of a ~100 MB model, the previous image already in the registry.
    const registry = config.registry.url;
    if (!(await registryAnswers(registry))) {
      console.log(`\nregistry ${registry} is not running (bash infra/stack.sh start): push figures skipped`);
      return;
    }
    const big = (seed: number) => mlpModel({ inputDim: 2500, hiddenDims: [10000], outputDim: 10, seed });
    const v1 = path.join(work, 'v1.onnx');
    const v2 = path.join(work, 'v2.onnx');
    await writeFile(v1, big(1));
    await writeFile(v2, big(2));
    const locations = new BlobLocations(null); // this run's own memory: the first push uploads everything
    const repository = `ferry-bench/image-size-${process.pid}-${Date.now().toString(36)}`;
    const build = (onnxPath: string, version: string) =>
      buildModelImageIndex({
        models: [{ name: 'big', version, onnxPath }],
        blobDir: path.join(work, 'blobs'),
      });
    const first = await build(v1, '1');
    const firstPush = await pushImage(first, registry, repository, 'v1', { blobLocations: locations });
    const second = await build(v2, '2');
    const started = performance.now();
    const secondPush = await pushImage(second, registry, repository, 'v2', { blobLocations: locations });
    const pushMs = performance.now() - started;
    const modelLayer = second.images[0]!.layers[2]!;
    console.log(
      `\nnew version of a ${mb(modelLayer.uncompressedSize)} model (${mb(modelLayer.size)} gzip layer), ${repository}`,
    );
    console.log(`  first push (v1, empty repository): ${mb(firstPush.pushedBytes)} sent`);
    console.log(
      `  second push (v2): ${secondPush.pushedBytes} B sent (${mb(secondPush.pushedBytes)}) in ${pushMs.toFixed(0)} ms, ` +
        `${mb(secondPush.skippedBytes)} already there; model layer ${modelLayer.size} B, ` +
        `so everything else pushed is ${secondPush.pushedBytes - modelLayer.size} B`,
    );
    const elsewhere = await pushImage(second, registry, `${repository}-copy`, 'v2', { blobLocations: locations });
    console.log(
      `  the same v2 into a new repository: ${mb(elsewhere.pushedBytes)} sent, ${mb(elsewhere.mountedBytes)} mounted from ${repository}`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
