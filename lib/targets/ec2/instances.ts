/**
 * Ferry's instances as EC2 reports them, found by tag: the live ones (pending or running) of a
 * deployment, and their termination.
 */
import {
  CreateTagsCommand,
  DeleteFleetsCommand,
  DescribeFleetsCommand,
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { ferryFilters, TAG, tagValue } from './tags';

export const LIVE_STATES = ['pending', 'running'];
/** On an instance whose spot capacity is being reclaimed: it no longer counts toward its revision. */
export const INTERRUPTED_TAG = 'ferry:interrupted';

export interface FerryInstance {
  id: string;
  deployment: string;
  revision: string;
  spec: string;
  lifecycle: 'spot' | 'on-demand';
  instanceType: string;
  zone: string;
  state: string;
  launchedAt: string;
  /** Public address when it has one, else private. */
  address?: string;
  interrupted: boolean;
  /** Set on an instance launched to replace an interrupted one: that one's id. */
  replacementFor?: string;
}

export function toFerryInstance(i: Instance): FerryInstance {
  return {
    id: i.InstanceId as string,
    deployment: tagValue(i.Tags, TAG.deployment) ?? '',
    revision: tagValue(i.Tags, TAG.revision) ?? '',
    spec: tagValue(i.Tags, TAG.spec) ?? '',
    lifecycle: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    instanceType: String(i.InstanceType ?? ''),
    zone: i.Placement?.AvailabilityZone ?? '',
    state: i.State?.Name ?? 'unknown',
    launchedAt: (i.LaunchTime ?? new Date(0)).toISOString(),
    address: i.PublicIpAddress ?? i.PrivateIpAddress,
    interrupted: tagValue(i.Tags, INTERRUPTED_TAG) !== undefined,
    ...(tagValue(i.Tags, TAG.replaces) ? { replacementFor: tagValue(i.Tags, TAG.replaces) } : {}),
  };
}

/** Live (pending or running) instances of a deployment (of every deployment when none is given). */
export async function liveInstances(ec2: EC2Client, deployment?: string): Promise<FerryInstance[]> {
  const found: FerryInstance[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [...ferryFilters(deployment), { Name: 'instance-state-name', Values: LIVE_STATES }],
        NextToken,
      }),
    );
    for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) found.push(toFerryInstance(i));
    NextToken = page.NextToken;
  } while (NextToken);
  return found.sort((a, b) => a.launchedAt.localeCompare(b.launchedAt) || a.id.localeCompare(b.id));
}

/** Terminates instances (none: nothing to do; EC2 refuses an empty list). */
export async function terminate(ec2: EC2Client, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500)
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids.slice(i, i + 500) }));
}

export async function markInterrupted(ec2: EC2Client, id: string, at: string): Promise<void> {
  await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: INTERRUPTED_TAG, Value: at }] }));
}

/**
 * Deletes the deployment's fleet records (instant fleets keep none of their own capacity, but EC2 lists
 * them until they are deleted). DescribeFleets has no tag filter, so the tags are matched here.
 */
export async function deleteFleets(ec2: EC2Client, deployment: string): Promise<void> {
  const ids: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(new DescribeFleetsCommand({ NextToken }));
    for (const f of page.Fleets ?? [])
      if (
        f.FleetId &&
        tagValue(f.Tags, TAG.managed) === 'true' &&
        tagValue(f.Tags, TAG.deployment) === deployment &&
        !String(f.FleetState ?? '').startsWith('deleted')
      )
        ids.push(f.FleetId);
    NextToken = page.NextToken;
  } while (NextToken);
  // One at a time: an instant fleet must be deleted with TerminateInstances, and moto (the emulator the
  // tests use) refuses that, after marking the fleet deleted, when its instances are all gone already.
  for (const id of ids) {
    try {
      await ec2.send(new DeleteFleetsCommand({ FleetIds: [id], TerminateInstances: true }));
    } catch (err) {
      if (!/No instances specified/.test((err as Error).message)) throw err;
    }
  }
}
