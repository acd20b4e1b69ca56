/**
 * Who is calling and whether they may do a thing: a pure decision, the same for the API, the gateway's
 * control API and inference. The answer is an HTTP status a caller can map without knowing the rules:
 * 401 without a valid key, 403 with a key that lacks the scope, 404 for another project's object, so a key
 * learns nothing about objects outside its project.
 */
import { grants, type Scope } from './scopes';

export interface Principal {
  keyId: number;
  keyName: string;
  /** The key's project; keys with `admin` act on every project. */
  project: string;
  scopes: Scope[];
}

/** With auth off (loopback only), every caller of the API and the gateway acts as this local operator. */
export const LOCAL_OPERATOR: Principal = {
  keyId: 0,
  keyName: 'local (auth off)',
  project: 'default',
  scopes: ['admin'],
};

export type AccessDecision = { ok: true } | { ok: false; status: 401 | 403 | 404; message: string };

export function isAdmin(p: Principal): boolean {
  return p.scopes.includes('admin');
}

/** May `p` use `scope` on an object of `objectProject` (undefined: not about one object, e.g. a list)? */
export function decideAccess(p: Principal | undefined, scope: Scope, objectProject?: string): AccessDecision {
  if (!p) {
    return { ok: false, status: 401, message: 'an API key is required: send "Authorization: Bearer <key>"' };
  }
  if (objectProject !== undefined && objectProject !== p.project && !isAdmin(p)) {
    return { ok: false, status: 404, message: 'not found' };
  }
  if (!grants(p.scopes, scope)) {
    return { ok: false, status: 403, message: `this key (${p.keyName}) lacks the "${scope}" scope` };
  }
  return { ok: true };
}

/** Which projects' objects `p` may list: all for an admin, else its own. */
export function visibleProjects(p: Principal): 'all' | string[] {
  return isAdmin(p) ? 'all' : [p.project];
}
