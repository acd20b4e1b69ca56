/**
 * Registry authentication, as registries ask for it in a 401's WWW-Authenticate header:
 *
 *   Basic realm="..."                                    send the credentials on every request
 *   Bearer realm="<url>",service="<s>",scope="<scopes>"  get a token from the realm (with the credentials
 *                                                        as Basic auth, or anonymously without them), then
 *                                                        send it as `Authorization: Bearer <token>`
 *
 * Tokens are kept per scope until shortly before they expire. Credentials and tokens never appear in an
 * error message: those name the realm and the scope only.
 */
import type * as http from 'node:http';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface AuthChallenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** A token is dropped this long before the realm said it expires, so a request never carries a stale one. */
const EXPIRY_MARGIN_MS = 10_000;
/** The token spec's default when the realm gives no expires_in. */
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_TOKEN_RESPONSE_BYTES = 1 << 20;

/** Parses `Bearer realm="a",service="b"` (quoted or bare values, commas inside quotes kept). */
export function parseChallenge(header: string): AuthChallenge | null {
  const m = /^\s*(Basic|Bearer)\b\s*(.*)$/i.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const pair = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (let p = pair.exec(m[2]!); p; p = pair.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase() as 'basic' | 'bearer', params };
}

/** The token scope of a request that reads `repository`. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** The token scope of a push to `repository` (a push reads too: HEAD before upload). */
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

/** `repository:a:pull repository:a:push,pull repository:b:pull` → `repository:a:pull,push repository:b:pull`. */
export function mergeScopes(scopes: string): string[] {
  const actions = new Map<string, Set<string>>();
  for (const scope of scopes.split(' ').filter(Boolean)) {
    const colon = scope.lastIndexOf(':');
    const resource = colon > 0 ? scope.slice(0, colon) : scope;
    const set = actions.get(resource) ?? new Set<string>();
    if (colon > 0) for (const action of scope.slice(colon + 1).split(',')) if (action) set.add(action);
    actions.set(resource, set);
  }
  return [...actions].map(([resource, set]) => (set.size ? `${resource}:${[...set].sort().join(',')}` : resource));
}

export function basicAuthorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

export class AuthError extends Error {}

/** What the client needs from its transport to ask a token realm (so one request path handles both). */
export type TokenFetch = (
  url: URL,
  headers: Record<string, string>,
) => Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }>;

export class RegistryAuth {
  private basic = false;
  private readonly tokens = new Map<string, { header: string; expiresAt: number }>();

  constructor(
    readonly credentials: RegistryCredentials | undefined,
    private readonly fetchToken: TokenFetch,
  ) {}

  /** The Authorization header to send for `scope`, when one is known. */
  header(scope: string): string | undefined {
    if (this.basic && this.credentials) return basicAuthorization(this.credentials);
    const token = this.tokens.get(scope);
    if (token && token.expiresAt > Date.now()) return token.header;
    return undefined;
  }

  /**
   * Answers a 401's challenge for a request in `scope` (space-separated `repository:name:actions`).
   * Returns false when there is nothing new to try (Basic without credentials, or already sent).
   */
  async answer(wwwAuthenticate: string | undefined, scope: string): Promise<boolean> {
    const challenge = wwwAuthenticate ? parseChallenge(wwwAuthenticate) : null;
    if (!challenge) return false;
    if (challenge.scheme === 'basic') {
      if (!this.credentials || this.basic) return false;
      this.basic = true;
      return true;
    }
    const realm = challenge.params.realm;
    if (!realm) throw new AuthError('the registry asked for a Bearer token but named no realm to get it from');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new AuthError(`the registry's token realm "${realm}" is not a URL`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    // The challenge's scope says what this request needs (a mount adds the source repository's pull);
    // ours adds what the requests after it will need (a push's HEAD is challenged for pull only).
    const scopes = mergeScopes(`${challenge.params.scope ?? ''} ${scope}`);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (this.credentials) url.searchParams.set('account', this.credentials.username);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.credentials) headers.Authorization = basicAuthorization(this.credentials);

    const what = `getting a token from ${url.origin}${url.pathname} for ${scopes.join(' ') || 'the registry'}`;
    const res = await this.fetchToken(url, headers);
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(
        `${what}: HTTP ${res.status} (${this.credentials ? `credentials for "${this.credentials.username}" refused` : 'it wants credentials'})`,
      );
    }
    if (res.status !== 200) throw new AuthError(`${what}: HTTP ${res.status}`);
    if (res.body.length > MAX_TOKEN_RESPONSE_BYTES) throw new AuthError(`${what}: the answer exceeds 1 MiB`);
    let token: string | undefined;
    let expiresIn = DEFAULT_TOKEN_SECONDS;
    try {
      const parsed = JSON.parse(res.body.toString('utf8')) as {
        token?: string;
        access_token?: string;
        expires_in?: number;
      };
      token = parsed.token ?? parsed.access_token;
      if (typeof parsed.expires_in === 'number' && parsed.expires_in > 0) expiresIn = parsed.expires_in;
    } catch {
      throw new AuthError(`${what}: the answer is not JSON`);
    }
    if (!token) throw new AuthError(`${what}: the answer holds no token`);
    const header = `Bearer ${token}`;
    if (this.tokens.get(scope)?.header === header) return false; // the registry refused this very token
    const lifetimeMs = Math.max(expiresIn * 1000 - EXPIRY_MARGIN_MS, expiresIn * 500);
    this.tokens.set(scope, { header, expiresAt: Date.now() + lifetimeMs });
    return true;
  }
}
