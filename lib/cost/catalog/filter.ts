/**
 * The rows of a catalog that match a provider, a region (`*` matches any run of characters, so `us-*`
 * works), a minimum vCPU count and an architecture. Instances match on all four; serverless rows on
 * provider, region, architecture and their vCPU limit; egress on provider and region.
 */
import type { Architecture, PriceCatalog, Provider } from './types';

export interface CatalogFilter {
  provider?: Provider;
  /** A region name or a pattern with `*`. */
  region?: string;
  minVcpus?: number;
  arch?: Architecture;
}

export function regionMatcher(pattern: string | undefined): (region: string) => boolean {
  if (!pattern) return () => true;
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return (region) => re.test(region);
}

const escapeRegExp = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

export function filterCatalog(catalog: PriceCatalog, f: CatalogFilter): PriceCatalog {
  const inRegion = regionMatcher(f.region);
  const where = (r: { provider: Provider; region: string }) =>
    (!f.provider || r.provider === f.provider) && inRegion(r.region);
  return {
    ...catalog,
    instances: catalog.instances.filter(
      (r) => where(r) && (!f.minVcpus || r.vcpus >= f.minVcpus) && (!f.arch || r.arch === f.arch),
    ),
    serverless: catalog.serverless.filter(
      (r) => where(r) && (!f.minVcpus || r.limits.maxVcpus >= f.minVcpus) && (!f.arch || r.arch === f.arch),
    ),
    egress: catalog.egress.filter(where),
  };
}
