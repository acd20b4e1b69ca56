/**
 * The tags that tie EC2 resources to a Ferry deployment. Everything the ec2 target creates carries them
 * (launch templates, fleets, instances), and everything it finds again — on a retried apply, for a
 * status, on destroy — it finds by them, so no local state is needed and nothing is launched twice.
 */
import type { Filter, Tag, TagSpecification } from '@aws-sdk/client-ec2';

export const TAG = {
  managed: 'ferry:managed',
  deployment: 'ferry:deployment',
  model: 'ferry:model',
  revision: 'ferry:revision',
  /** Hash of what an instance runs (image, limits, agent, template): a changed spec gets new instances. */
  spec: 'ferry:spec',
  /** `registry/repository@digest` of the revision's image (status reads the spec back from it). */
  image: 'ferry:image',
  /** The revision's wanted instance count, on its launch template. */
  replicas: 'ferry:replicas',
  /** Order of the revision among the deployment's revisions, on its launch template. */
  order: 'ferry:order',
  /** running | hibernated, on the launch template. */
  state: 'ferry:state',
  /** `<cpus>/<memory MiB>` of each replica, on the launch template. */
  resources: 'ferry:resources',
  /** On an instance launched to replace one whose spot capacity was reclaimed: that instance's id. */
  replaces: 'ferry:replaces',
  Name: 'Name',
} as const;

export interface RevisionTags {
  deployment: string;
  model: string;
  revision: string;
  spec: string;
}

/** The tags of one revision's resources (an EC2 tag value holds at most 256 characters). */
export function revisionTags(t: RevisionTags): Tag[] {
  return [
    { Key: TAG.managed, Value: 'true' },
    { Key: TAG.deployment, Value: t.deployment },
    { Key: TAG.model, Value: t.model },
    { Key: TAG.revision, Value: t.revision },
    { Key: TAG.spec, Value: t.spec },
    { Key: TAG.Name, Value: `ferry-${t.deployment}-${t.revision}` },
  ];
}

export function tagSpecifications(
  resourceTypes: Array<'instance' | 'fleet' | 'launch-template' | 'volume'>,
  tags: Tag[],
): TagSpecification[] {
  return resourceTypes.map((ResourceType) => ({ ResourceType, Tags: tags }));
}

/** Filters for DescribeInstances/DescribeLaunchTemplates: Ferry's resources, of one deployment if given. */
export function ferryFilters(deployment?: string, revision?: string): Filter[] {
  const filters: Filter[] = [{ Name: `tag:${TAG.managed}`, Values: ['true'] }];
  if (deployment !== undefined) filters.push({ Name: `tag:${TAG.deployment}`, Values: [deployment] });
  if (revision !== undefined) filters.push({ Name: `tag:${TAG.revision}`, Values: [revision] });
  return filters;
}

/** A tag's value from a resource's tag list. */
export function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}
