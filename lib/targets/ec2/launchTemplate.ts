/**
 * One launch template per revision and spec: what every instance of it boots (AMI, user data, metadata
 * options, security groups, tags). Its name carries the spec hash, so it is found again by name (a retried
 * apply creates none twice) and a changed spec gets a new template while the old one still backs the
 * instances being replaced.
 */
import {
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DeleteLaunchTemplateCommand,
  DescribeLaunchTemplatesCommand,
  DescribeTagsCommand,
  type EC2Client,
  type LaunchTemplate,
  type RequestLaunchTemplateData,
  type Tag,
} from '@aws-sdk/client-ec2';
import { ferryFilters, tagSpecifications } from './tags';

export interface LaunchTemplateInput {
  name: string;
  imageId: string;
  userData: string;
  securityGroupIds: string[];
  /** On the template itself (with the revision's desired count and image) and on what it launches. */
  templateTags: Tag[];
  instanceTags: Tag[];
  clientToken: string;
}

/** `ferry-<deployment>-<revision>-<spec hash>`, within EC2's 128 characters of [A-Za-z0-9().\-/_]. */
export function launchTemplateName(deployment: string, revision: string, spec: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9().\-/_]/g, '_');
  return `ferry-${safe(deployment)}-${safe(revision)}-${spec.slice(0, 12)}`.slice(0, 128);
}

export function launchTemplateData(t: LaunchTemplateInput): RequestLaunchTemplateData {
  return {
    ImageId: t.imageId,
    UserData: Buffer.from(t.userData).toString('base64'),
    // IMDSv2 only (a token first), one hop: the replica's bridged container cannot reach it, the agent
    // on the host network can.
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
    InstanceInitiatedShutdownBehavior: 'terminate',
    ...(t.securityGroupIds.length > 0 ? { SecurityGroupIds: t.securityGroupIds } : {}),
    TagSpecifications: tagSpecifications(
      ['instance', 'volume'],
      t.instanceTags,
    ) as RequestLaunchTemplateData['TagSpecifications'],
  };
}

/** Ferry's launch templates of a deployment (all of them with no deployment given). */
export async function findLaunchTemplates(ec2: EC2Client, deployment?: string): Promise<LaunchTemplate[]> {
  const found: LaunchTemplate[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(new DescribeLaunchTemplatesCommand({ Filters: ferryFilters(deployment), NextToken }));
    found.push(...(page.LaunchTemplates ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return withCurrentTags(ec2, found);
}

/**
 * The templates with their tags as they are now, read through DescribeTags: the record tags change in
 * place (setTemplateTags), and not every EC2 implementation reports such changes in DescribeLaunchTemplates
 * (moto returns the tags a template was created with).
 */
async function withCurrentTags(ec2: EC2Client, templates: LaunchTemplate[]): Promise<LaunchTemplate[]> {
  const ids = templates.map((t) => t.LaunchTemplateId).filter((id): id is string => Boolean(id));
  const tags = new Map<string, Tag[]>();
  for (let i = 0; i < ids.length; i += 100) {
    let NextToken: string | undefined;
    do {
      const page = await ec2.send(
        new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: ids.slice(i, i + 100) }], NextToken }),
      );
      for (const t of page.Tags ?? []) {
        if (!t.ResourceId) continue;
        tags.set(t.ResourceId, [...(tags.get(t.ResourceId) ?? []), { Key: t.Key, Value: t.Value }]);
      }
      NextToken = page.NextToken;
    } while (NextToken);
  }
  return templates.map((t) => ({ ...t, Tags: tags.get(t.LaunchTemplateId ?? '') ?? t.Tags }));
}

/** The template named `t.name`, created when there is none. */
export async function ensureLaunchTemplate(
  ec2: EC2Client,
  t: LaunchTemplateInput,
  existing: LaunchTemplate[],
): Promise<LaunchTemplate> {
  const found = existing.find((lt) => lt.LaunchTemplateName === t.name);
  if (found) return found;
  const created = await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: t.name,
      ClientToken: t.clientToken,
      LaunchTemplateData: launchTemplateData(t),
      TagSpecifications: tagSpecifications(['launch-template'], t.templateTags) as never,
    }),
  );
  if (!created.LaunchTemplate) throw new Error(`CreateLaunchTemplate ${t.name} returned no template`);
  return created.LaunchTemplate;
}

export async function setTemplateTags(ec2: EC2Client, templateId: string, tags: Tag[]): Promise<void> {
  await ec2.send(new CreateTagsCommand({ Resources: [templateId], Tags: tags }));
}

/** Deletes a template; one already gone is not an error. */
export async function deleteLaunchTemplate(ec2: EC2Client, templateId: string): Promise<void> {
  try {
    await ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateId: templateId }));
  } catch (err) {
    if (!/NotFound/i.test((err as { name?: string }).name ?? '')) throw err;
  }
}
