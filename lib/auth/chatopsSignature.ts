/**
 * Chat-ops requests are signed the way Slack signs its requests: `v0=` + hex HMAC-SHA256 over
 * `v0:<timestamp>:<raw body>` with a shared secret, sent as `X-Slack-Signature` with the timestamp in
 * `X-Slack-Request-Timestamp`. A request outside the replay window, or with a signature that does not match
 * (compared in constant time), is refused. Time is passed in, so the decision is pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-slack-signature';
export const TIMESTAMP_HEADER = 'x-slack-request-timestamp';
export const REPLAY_WINDOW_SECONDS = 5 * 60;

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function signChatopsRequest(secret: string, timestampSeconds: number, rawBody: Buffer | string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestampSeconds}:`).update(rawBody).digest('hex')}`;
}

export function checkChatopsSignature(opts: {
  secret: string;
  signature: string | undefined;
  timestamp: string | undefined;
  rawBody: Buffer;
  nowSeconds: number;
}): SignatureCheck {
  const { signature, timestamp } = opts;
  if (!signature || !timestamp) return { ok: false, reason: `missing ${SIGNATURE_HEADER} or ${TIMESTAMP_HEADER}` };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: `${TIMESTAMP_HEADER} is not a Unix time` };
  if (Math.abs(opts.nowSeconds - Number(timestamp)) > REPLAY_WINDOW_SECONDS) {
    return { ok: false, reason: `request timestamp is outside the ${REPLAY_WINDOW_SECONDS / 60}-minute replay window` };
  }
  const expected = Buffer.from(signChatopsRequest(opts.secret, Number(timestamp), opts.rawBody));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature does not match' };
  }
  return { ok: true };
}
