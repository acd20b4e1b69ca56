import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { checkChatopsSignature, signChatopsRequest } from '../../lib/auth/chatopsSignature';

const secret = '8f742231b10e8888abcd99yyyzzz85a5';
const body = Buffer.from('{"deployment":"m-v1","plan":"original","user":"alice"}');
const now = 1_800_000_000;

describe('chat-ops signatures (Slack scheme)', () => {
  it('match an HMAC-SHA256 computed independently over v0:timestamp:body', () => {
    const independent = `v0=${createHmac('sha256', secret).update(`v0:${now}:${body.toString()}`).digest('hex')}`;
    assert.equal(signChatopsRequest(secret, now, body), independent);
  });

  it('accept a fresh signed request and refuse stale, tampered, unsigned or wrong-secret ones', () => {
    const signature = signChatopsRequest(secret, now, body);
    const check = (over: Partial<Parameters<typeof checkChatopsSignature>[0]>) =>
      checkChatopsSignature({
        secret,
        signature,
        timestamp: String(now),
        rawBody: body,
        nowSeconds: now + 10,
        ...over,
      });
    assert.deepEqual(check({}), { ok: true });
    assert.match((check({ nowSeconds: now + 301 }) as { reason: string }).reason, /replay window/);
    assert.match((check({ nowSeconds: now - 301 }) as { reason: string }).reason, /replay window/);
    assert.match(
      (check({ rawBody: Buffer.from(body.toString().replace('alice', 'mallory')) }) as { reason: string }).reason,
      /does not match/,
    );
    assert.match((check({ signature: undefined }) as { reason: string }).reason, /missing/);
    assert.match((check({ timestamp: '12abc' }) as { reason: string }).reason, /Unix time/);
    assert.equal(check({ secret: 'other' }).ok, false);
    assert.equal(check({ signature: 'v0=00' }).ok, false);
  });
});
