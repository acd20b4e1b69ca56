/**
 * What an instance boots and where: the AMI for the pools' architecture, the default VPC's subnet of
 * each zone, and the security groups. Each can be configured (FERRY_EC2_AMI, FERRY_EC2_AMI_ARM64,
 * FERRY_EC2_SECURITY_GROUP_IDS); otherwise the newest Ubuntu 24.04 LTS image published by Canonical
 * and the account's default VPC.
 */
import { DescribeImagesCommand, DescribeSubnetsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { Architecture } from '../../cost/catalog/types';
import type { AwsVariables } from './awsEnvironment';

/** Canonical's AWS account, which publishes the Ubuntu images. */
const CANONICAL_OWNER = '099720109477';

export async function machineImage(ec2: EC2Client, arch: Architecture, env: AwsVariables): Promise<string> {
  const configured = arch === 'arm64' ? env.FERRY_EC2_AMI_ARM64 : env.FERRY_EC2_AMI;
  if (configured) return configured;
  const ubuntuArch = arch === 'arm64' ? 'arm64' : 'amd64';
  const images = await ec2.send(
    new DescribeImagesCommand({
      Owners: [CANONICAL_OWNER],
      Filters: [
        { Name: 'name', Values: [`ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-${ubuntuArch}-server-*`] },
        { Name: 'state', Values: ['available'] },
      ],
    }),
  );
  const newest = (images.Images ?? [])
    .filter((i) => i.ImageId)
    .sort((a, b) => String(b.CreationDate ?? '').localeCompare(String(a.CreationDate ?? '')))[0];
  if (!newest?.ImageId)
    throw new Error(
      `no Ubuntu 24.04 ${ubuntuArch} image found in this region: set ${arch === 'arm64' ? 'FERRY_EC2_AMI_ARM64' : 'FERRY_EC2_AMI'} to an AMI id`,
    );
  return newest.ImageId;
}

/** Zone → the default VPC's subnet there (empty when the account has no default VPC). */
export async function defaultSubnets(ec2: EC2Client): Promise<Record<string, string>> {
  const page = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
  const subnets: Record<string, string> = {};
  for (const s of page.Subnets ?? []) if (s.AvailabilityZone && s.SubnetId) subnets[s.AvailabilityZone] = s.SubnetId;
  return subnets;
}

export function securityGroupIds(env: AwsVariables): string[] {
  return (env.FERRY_EC2_SECURITY_GROUP_IDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
