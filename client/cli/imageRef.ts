/**
 * Image references as `ferry image` takes them: `[http(s)://][REGISTRY/]REPO[:TAG|@sha256:...]`.
 *
 * The first part is a registry when it looks like a host (has a '.' or a ':', or is localhost), as
 * Docker reads references; without one the configured registry (FERRY_REGISTRY_URL) is meant. Without a
 * scheme, a loopback registry is spoken to over http and any other over https.
 */
import { isDigest } from '../../lib/oci/digest';
import { assertReference, assertRepository } from '../../lib/oci/registry';
import { FerryError } from '../sdk/errors';

export interface ParsedImageRef {
  /** Origin of the registry, e.g. http://127.0.0.1:5000 */
  registry: string;
  repository: string;
  /** A tag or a sha256 digest. */
  reference: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function parseImageRef(raw: string, defaultRegistry: string): ParsedImageRef {
  let rest = raw.trim();
  let scheme: string | undefined;
  const schemeMatch = /^(https?):\/\//.exec(rest);
  if (schemeMatch) {
    scheme = schemeMatch[1];
    rest = rest.slice(schemeMatch[0].length);
  }
  const slash = rest.indexOf('/');
  const first = slash > 0 ? rest.slice(0, slash) : '';
  const hasHost =
    scheme !== undefined || (first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost'));
  let registry: string;
  if (hasHost) {
    if (!first) throw new FerryError(`image reference "${raw}" names a registry but no repository (REGISTRY/REPO:TAG)`);
    const host = first;
    const hostname = host.replace(/:\d+$/, '');
    registry = `${scheme ?? (LOOPBACK.has(hostname) ? 'http' : 'https')}://${host}`;
    rest = rest.slice(slash + 1);
  } else {
    registry = new URL(defaultRegistry).origin;
  }

  let repository = rest;
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    repository = rest.slice(0, at);
    reference = rest.slice(at + 1);
    if (!isDigest(reference)) throw new FerryError(`image reference "${raw}": after @ comes a sha256:<64 hex> digest`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      repository = rest.slice(0, colon);
      reference = rest.slice(colon + 1);
    }
  }
  try {
    assertRepository(repository);
    assertReference(reference);
    new URL(registry);
  } catch (error) {
    throw new FerryError(`image reference "${raw}": ${(error as Error).message}`);
  }
  return { registry, repository, reference };
}

export function formatImageRef(ref: ParsedImageRef): string {
  const host = new URL(ref.registry).host;
  return `${host}/${ref.repository}${isDigest(ref.reference) ? '@' : ':'}${ref.reference}`;
}
