import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiKeyPrefix, bearerKey, generateApiKey, hashApiKey, looksLikeApiKey } from '../../lib/auth/apiKey';
import { decideAccess, type Principal, visibleProjects } from '../../lib/auth/principal';
import { KeyRateLimiter } from '../../lib/auth/rateLimit';
import { grants, InvalidScopeError, parseScopes } from '../../lib/auth/scopes';
import { assertValidName, InvalidNameError, isValidName } from '../../lib/names';

const reader: Principal = { keyId: 1, keyName: 'ci', project: 'alpha', scopes: ['read'] };
const admin: Principal = { keyId: 2, keyName: 'root', project: 'default', scopes: ['admin'] };

describe('API keys', () => {
  it('are 256 random bits with a recognisable prefix, and only their hash identifies them', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    assert.notEqual(a, b);
    assert.ok(looksLikeApiKey(a), a);
    assert.equal(a.length, 47);
    assert.equal(apiKeyPrefix(a), a.slice(0, 12));
    assert.match(hashApiKey(a), /^[0-9a-f]{64}$/);
    assert.notEqual(hashApiKey(a), hashApiKey(b));
    assert.ok(!looksLikeApiKey(`${a}x`));
    assert.ok(!looksLikeApiKey('fry_short'));
  });

  it('come only from a Bearer Authorization header', () => {
    assert.equal(bearerKey('Bearer fry_abc'), 'fry_abc');
    assert.equal(bearerKey('bearer  fry_abc'), 'fry_abc');
    assert.equal(bearerKey('Basic Zm9vOmJhcg=='), undefined);
    assert.equal(bearerKey('Bearer a b'), undefined);
    assert.equal(bearerKey(undefined), undefined);
    assert.equal(bearerKey(['Bearer x', 'Bearer y']), undefined);
  });
});

describe('scopes', () => {
  it('parse a comma list and refuse unknown or empty ones by name', () => {
    assert.deepEqual(parseScopes('deploy, read,deploy'), ['deploy', 'read']);
    assert.throws(
      () => parseScopes('read,root'),
      (e: Error) => e instanceof InvalidScopeError && /"root"/.test(e.message),
    );
    assert.throws(() => parseScopes(''), InvalidScopeError);
  });

  it('admin implies every scope; others only themselves', () => {
    assert.ok(grants(['admin'], 'operate'));
    assert.ok(grants(['read', 'deploy'], 'deploy'));
    assert.ok(!grants(['read'], 'approve'));
  });
});

describe('decideAccess', () => {
  it('is 401 without a key, 403 without the scope, 404 for another project, ok otherwise', () => {
    assert.equal((decideAccess(undefined, 'read') as { status: number }).status, 401);
    assert.equal((decideAccess(reader, 'deploy', 'alpha') as { status: number }).status, 403);
    // Another project's object is "not found" even when the scope is missing too: nothing is revealed.
    assert.equal((decideAccess(reader, 'deploy', 'beta') as { status: number }).status, 404);
    assert.equal((decideAccess(reader, 'read', 'beta') as { status: number }).status, 404);
    assert.deepEqual(decideAccess(reader, 'read', 'alpha'), { ok: true });
    assert.deepEqual(decideAccess(reader, 'read'), { ok: true });
    assert.deepEqual(decideAccess(admin, 'operate', 'beta'), { ok: true });
  });

  it('lists only the key’s own project unless it is an admin', () => {
    assert.deepEqual(visibleProjects(reader), ['alpha']);
    assert.equal(visibleProjects(admin), 'all');
  });
});

describe('KeyRateLimiter', () => {
  it('allows a burst, then refuses with Retry-After until tokens refill', () => {
    const limiter = new KeyRateLimiter({ perSecond: 2, burst: 3 });
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('k', t0), { allowed: true });
    assert.deepEqual(limiter.take('k', t0), { allowed: false, retryAfterSeconds: 1 });
    assert.deepEqual(limiter.take('other', t0), { allowed: true }, 'buckets are per key');
    assert.deepEqual(limiter.take('k', t0 + 500), { allowed: true }, 'one token back after 0.5 s at 2/s');
    assert.equal(limiter.take('k', t0 + 500).allowed, false);
  });

  it('keeps memory bounded: idle full buckets are swept', () => {
    const limiter = new KeyRateLimiter({ perSecond: 100, burst: 1 });
    for (let i = 0; i < 10_001; i++) limiter.take(`k${i}`, 0);
    limiter.take('late', 60_000);
    assert.ok(limiter.size < 10, `size ${limiter.size}`);
  });
});

describe('names', () => {
  it('refuse traversal, markup, empty and over-long names, naming the rule', () => {
    for (const bad of ['../etc', 'a/b', '<script>', '', 'x'.repeat(64), 'Upper', '.hidden', 'a b', 'a\u0000b']) {
      assert.ok(!isValidName('model', bad), bad);
    }
    assert.throws(
      () => assertValidName('model', `${'y'.repeat(300)}`),
      (e: Error) => e instanceof InvalidNameError && /300 characters/.test(e.message) && e.message.length < 300,
    );
    assert.equal(assertValidName('model', 'resnet-50.v2'), 'resnet-50.v2');
    assert.ok(isValidName('version', 'sha-0123456789ab'));
    assert.ok(!isValidName('project', 'Alpha'));
    assert.ok(!isValidName('version', 42));
  });
});
