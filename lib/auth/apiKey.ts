/**
 * Ferry API keys: `fry_` + 43 base64url characters (256 random bits). Only the sha256 of a key is stored;
 * the prefix (`fry_` + 8 characters) identifies it in listings and the audit log without revealing it.
 */
import { createHash, randomBytes } from 'node:crypto';

const KEY_PATTERN = /^fry_[A-Za-z0-9_-]{43}$/;
export const KEY_PREFIX_LENGTH = 12;

export function generateApiKey(): string {
  return `fry_${randomBytes(32).toString('base64url')}`;
}

export function looksLikeApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function apiKeyPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX_LENGTH);
}

/**
 * The key from an `Authorization: Bearer <key>` header, or undefined when there is none. Credentials come
 * only from this header, never from cookies or the query string, so another origin cannot send them for a
 * user (no ambient authority, no CSRF).
 */
export function bearerKey(authorization: string | string[] | undefined): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(authorization);
  return m ? m[1] : undefined;
}
