/**
 * Pushing a model image so that its tag only ever names an image that passed its smoke test:
 *
 *   1. the image must have this machine's platform, or it cannot be tested here (refused before any push);
 *   2. blobs and manifests go up by digest (lib/oci/push.ts with the digest as the reference): the
 *      registry holds the image, but no tag names it;
 *   3. the smoke test runs this machine's platform of it (smokeTest.ts);
 *   4. only then is the tag put, as the last write.
 *
 * A failure at any step throws before step 4, so a bad image stays untagged (the registry's garbage
 * collection may take its blobs), and a retry of the whole push finds every blob already there.
 */
import { hostArchitecture, isImageIndex, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE } from '../oci/image';
import { type PushedImage, type PushOptions, pushImage } from '../oci/push';
import { RegistryClient, type RegistryClientOptions } from '../oci/registry';
import type { BuiltImage, BuiltImageIndex } from './modelImage';
import { SmokeTestError, type SmokeTestOptions, type SmokeTestRecord, smokeTestImage } from './smokeTest';

export interface TestedPushOptions {
  registryUrl: string;
  repository: string;
  tag: string;
  push?: PushOptions;
  smokeTest: Omit<SmokeTestOptions, 'image' | 'resolvedDigest'>;
  /** Called as each step begins. */
  onStep?: (step: 'pushing' | 'smoke-test' | 'tagging') => void;
}

/** Puts the already pushed `image`'s manifest (the index, for a multi-platform image) under `tag`. */
export async function tagPushedImage(
  image: BuiltImage | BuiltImageIndex,
  registryUrl: string,
  repository: string,
  tag: string,
  options: RegistryClientOptions = {},
): Promise<void> {
  const client = new RegistryClient(registryUrl, options);
  const [json, mediaType] = isImageIndex(image)
    ? [image.indexJson, OCI_INDEX_MEDIA_TYPE]
    : [image.manifestJson, OCI_MANIFEST_MEDIA_TYPE];
  const digest = await client.putManifest(repository, tag, json, mediaType);
  if (digest !== image.digest)
    throw new Error(`tagged digest ${digest} differs from the built image's ${image.digest}`);
}

/** The image of this machine's platform, which the smoke test can run here. */
function testablePlatform(image: BuiltImage | BuiltImageIndex, runtime: string): BuiltImage {
  const architecture = hostArchitecture();
  const images = isImageIndex(image) ? image.images : [image];
  const testable = images.find((i) => i.config.os === 'linux' && i.config.architecture === architecture);
  if (!testable) {
    const platforms = images.map((i) => `${i.config.os}/${i.config.architecture}`);
    throw new SmokeTestError(
      `the image is built for ${platforms.join(', ')}, not for this machine's linux/${architecture}, so it cannot be smoke-tested here`,
      '',
      runtime,
    );
  }
  return testable;
}

export async function pushSmokeTestedImage(
  image: BuiltImage | BuiltImageIndex,
  opts: TestedPushOptions,
): Promise<{ pushed: PushedImage; smokeTest: SmokeTestRecord }> {
  const step = opts.onStep ?? (() => undefined);
  const runner = opts.smokeTest.runner;
  const testable = testablePlatform(image, runner.kind === 'container' ? runner.runtime.name : 'process');
  step('pushing');
  const pushed = await pushImage(image, opts.registryUrl, opts.repository, image.digest, opts.push);
  step('smoke-test');
  const smokeTest = await smokeTestImage({ ...opts.smokeTest, image: testable, resolvedDigest: pushed.digest });
  step('tagging');
  const { blobLocations: _locations, onProgress: _progress, ...clientOptions } = opts.push ?? {};
  await tagPushedImage(image, opts.registryUrl, opts.repository, opts.tag, clientOptions);
  return { pushed, smokeTest };
}
