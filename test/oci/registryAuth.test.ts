import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextOffsetFromRange } from '../../lib/oci/blobUpload';
import { mergeScopes, parseChallenge } from '../../lib/oci/registryAuth';
import { backoffMs } from '../../lib/oci/retry';

describe('WWW-Authenticate challenges', () => {
  it('reads a Bearer challenge with quoted values, commas and spaces inside quotes', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull"',
      ),
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          service: 'registry.example',
          scope: 'repository:a/b:pull,push repository:c:pull',
        },
      },
    );
  });

  it('reads Basic, bare values, and refuses other schemes', () => {
    assert.deepEqual(parseChallenge('Basic realm=registry'), { scheme: 'basic', params: { realm: 'registry' } });
    assert.equal(parseChallenge('Negotiate abc'), null);
  });

  it('merges scopes per resource, so one token covers a push', () => {
    assert.deepEqual(mergeScopes('repository:a:pull repository:a:push,pull  repository:b:pull'), [
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
});

describe('upload offsets and backoff', () => {
  it('the next offset from a Range header', () => {
    assert.equal(nextOffsetFromRange('0-499'), 500);
    assert.equal(nextOffsetFromRange('bytes=0-65535'), 65536);
    assert.equal(nextOffsetFromRange('0-0'), 0);
    assert.equal(nextOffsetFromRange(undefined), undefined);
    assert.equal(nextOffsetFromRange('10-20'), undefined);
  });

  it('doubles the wait up to the cap, and honours Retry-After within it', () => {
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    for (const [attempt, base] of [
      [1, 100],
      [2, 200],
      [4, 800],
      [6, 1000],
    ] as const) {
      const wait = backoffMs(policy, attempt);
      assert.ok(wait >= base * 0.8 && wait <= base * 1.2, `attempt ${attempt}: ${wait}`);
    }
    assert.ok(backoffMs(policy, 1, '0.5') >= 400);
    assert.ok(backoffMs(policy, 1, '60') <= 1200);
  });
});
