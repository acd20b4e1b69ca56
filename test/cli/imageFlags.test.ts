/** `ferry image` flag values and image references. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCpus, parseMemory, parsePlatforms, parseRuntime, registryCredentials } from '../../client/cli/imageFlags';
import { formatImageRef, parseImageRef } from '../../client/cli/imageRef';

const STACK = 'http://127.0.0.1:5000';

describe('image references', () => {
  it('a registry host, a repository and a tag or digest', () => {
    assert.deepEqual(parseImageRef('127.0.0.1:5000/ferry/demo:v1', STACK), {
      registry: 'http://127.0.0.1:5000',
      repository: 'ferry/demo',
      reference: 'v1',
    });
    assert.deepEqual(parseImageRef('registry.example.com/team/model', STACK), {
      registry: 'https://registry.example.com',
      repository: 'team/model',
      reference: 'latest',
    });
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseImageRef(`http://registry.internal:8080/m@${digest}`, STACK), {
      registry: 'http://registry.internal:8080',
      repository: 'm',
      reference: digest,
    });
  });

  it('without a host: the configured registry', () => {
    assert.deepEqual(parseImageRef('ferry/demo:v2', STACK), {
      registry: STACK,
      repository: 'ferry/demo',
      reference: 'v2',
    });
    assert.equal(formatImageRef(parseImageRef('ferry/demo:v2', STACK)), '127.0.0.1:5000/ferry/demo:v2');
  });

  it('refuses what is no reference', () => {
    assert.throws(() => parseImageRef('Ferry/Upper:v1', STACK), /invalid repository name/);
    assert.throws(() => parseImageRef('ferry/demo@sha256:123', STACK), /sha256:<64 hex> digest/);
    assert.throws(() => parseImageRef('ferry/demo:bad/tag:', STACK), /image reference/);
  });
});

describe('flag values', () => {
  it('platforms: the two Ferry builds, nothing else', () => {
    assert.deepEqual(parsePlatforms('linux/amd64,linux/arm64'), ['amd64', 'arm64']);
    assert.deepEqual(parsePlatforms('linux/arm64'), ['arm64']);
    assert.throws(
      () => parsePlatforms('linux/amd64,windows/amd64'),
      /unknown platform "windows\/amd64": Ferry builds linux\/amd64 and linux\/arm64/,
    );
  });

  it('memory sizes with Kubernetes suffixes, CPUs, runtimes', () => {
    assert.equal(parseMemory('512Mi'), 512 * 2 ** 20);
    assert.equal(parseMemory('1.5Gi'), 1.5 * 2 ** 30);
    assert.equal(parseMemory('300M'), 300e6);
    assert.throws(() => parseMemory('lots'), /--memory must be a size/);
    assert.throws(() => parseMemory('1Mi'), /too little/);
    assert.equal(parseCpus('0.5'), 0.5);
    assert.throws(() => parseCpus('0'), /--cpus/);
    assert.equal(parseRuntime('runc'), 'runc');
    assert.throws(() => parseRuntime('docker'), /unknown runtime "docker"/);
  });

  it('credentials from the flags, else the environment; a half pair is refused', () => {
    assert.deepEqual(registryCredentials({ registryUser: 'u', registryPassword: 'p' }, {}), {
      username: 'u',
      password: 'p',
    });
    assert.deepEqual(registryCredentials({}, { FERRY_REGISTRY_USER: 'e', FERRY_REGISTRY_PASSWORD: 'q' }), {
      username: 'e',
      password: 'q',
    });
    assert.equal(registryCredentials({}, {}), undefined);
    assert.throws(() => registryCredentials({ registryUser: 'u' }, {}), /go together/);
    assert.throws(() => registryCredentials({}, { FERRY_REGISTRY_USER: 'e' }), /go together/);
  });
});
