/**
 * What a key may do. A route or a gateway path names the one scope it needs; `admin` is the operator of the
 * install (keys and projects of every project), so it implies every other scope.
 */
export const SCOPES = ['read', 'deploy', 'approve', 'operate', 'infer', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const SCOPE_MEANING: Record<Scope, string> = {
  read: 'see models, deployments, plans, metrics and the audit log of its project',
  deploy: 'upload a model and start a deployment',
  approve: 'choose an optimization plan for a deployment waiting for approval',
  operate: 'change traffic and scaling, promote, roll back, undeploy',
  infer: 'send inference requests to deployments that are not public',
  admin: 'create and revoke keys of any project; implies every other scope',
};

export class InvalidScopeError extends Error {
  override name = 'InvalidScopeError';
}

/** `"deploy,read"` → `['deploy', 'read']`; an unknown or empty scope is refused by name. */
export function parseScopes(list: string | readonly string[]): Scope[] {
  const items = (typeof list === 'string' ? list.split(',') : [...list]).map((s) => s.trim());
  if (items.length === 0 || items.every((s) => s === '')) {
    throw new InvalidScopeError(`no scope given; choose from ${SCOPES.join(', ')}`);
  }
  const out: Scope[] = [];
  for (const item of items) {
    if (!(SCOPES as readonly string[]).includes(item)) {
      throw new InvalidScopeError(`unknown scope "${item}"; choose from ${SCOPES.join(', ')}`);
    }
    if (!out.includes(item as Scope)) out.push(item as Scope);
  }
  return out;
}

export function grants(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes(needed) || scopes.includes('admin');
}
