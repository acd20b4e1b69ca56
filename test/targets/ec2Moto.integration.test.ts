/**
 * The EC2 target against moto's EC2 server, an emulator of an AWS account (not AWS itself): it answers
 * the EC2 API, launches instances that run nothing, returns fake spot prices and never interrupts. So the
 * pools' prices come from catalog rows, and instances count as ready when EC2 says they run.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  DescribeAvailabilityZonesCommand,
  DescribeFleetsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { shippedCatalog } from '../../lib/cost/catalog/load';
import type { InstancePrice } from '../../lib/cost/catalog/types';
import { type ModelMeasurements, parseProfile, planDeployment } from '../../lib/cost/engine';
import { DeploymentNotFoundError, type DeploymentSpec } from '../../lib/targets/deploymentTarget';
import { ec2Client } from '../../lib/targets/ec2/awsEnvironment';
import { Ec2Target } from '../../lib/targets/ec2/ec2Target';
import { ec2ChoiceFromOption } from '../../lib/targets/ec2/fromPlan';
import { cheapestPools, type Ec2Placement } from '../../lib/targets/ec2/placement';
import { type MotoServer, startMotoServer } from '../helpers/motoServer';

/** Two x86 types in us-east-1, spot prices per zone (figures of the shape the price catalog holds). */
const rows: InstancePrice[] = [
  {
    provider: 'aws',
    region: 'us-east-1',
    instanceType: 'c7i.large',
    family: 'compute-optimized',
    vcpus: 2,
    memoryGiB: 4,
    arch: 'x86_64',
    onDemandUsdPerHour: 0.08925,
    spotUsdPerHour: { 'us-east-1a': 0.041, 'us-east-1b': 0.036, 'us-east-1c': 0.052 },
    source: { url: 'test fixture', retrieved: '2026-12-01', estimate: true },
  },
  {
    provider: 'aws',
    region: 'us-east-1',
    instanceType: 'm7i.large',
    family: 'general-purpose',
    vcpus: 2,
    memoryGiB: 8,
    arch: 'x86_64',
    onDemandUsdPerHour: 0.1008,
    spotUsdPerHour: { 'us-east-1a': 0.047, 'us-east-1b': 0.044 },
    source: { url: 'test fixture', retrieved: '2026-12-01', estimate: true },
  },
];

const DIGEST = `sha256:${'ab'.repeat(32)}`;

let moto: MotoServer;
let ec2: EC2Client;
let target: Ec2Target;
let placement: Ec2Placement;
let ami: string;

before(async () => {
  moto = await startMotoServer();
  ec2 = ec2Client(moto.env);
  // moto's image list has no Ubuntu 24.04: take one it has, as FERRY_EC2_AMI would name one.
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ['099720109477'] }));
  const found = images.Images?.find((i) => i.Architecture === 'x86_64')?.ImageId;
  assert.ok(found, 'moto lists an x86_64 image');
  ami = found;
  placement = {
    region: 'us-east-1',
    pools: cheapestPools(rows, { region: 'us-east-1', instanceTypes: ['c7i.large', 'm7i.large'], maxPools: 4 }),
    onDemandBase: 1,
  };
  target = new Ec2Target({
    env: { ...moto.env, FERRY_EC2_AMI: ami },
    client: ec2,
    placement,
    readiness: 'instance-state',
    pollMs: 100,
    readyTimeoutMs: 30_000,
    controlUrl: 'http://ferry.example:8080',
  });
});
after(async () => {
  await moto?.stop();
});

const spec = (id: string, replicas: number, reference = DIGEST): DeploymentSpec => ({
  id,
  model: 'mlp',
  replicas,
  image: { registry: 'https://registry.example', repository: 'ferry/mlp', reference },
  resources: { cpus: 1, memoryMb: 768 },
});

async function instancesOf(id: string, states = ['pending', 'running']): Promise<Instance[]> {
  const page = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:ferry:deployment', Values: [id] },
        { Name: 'instance-state-name', Values: states },
      ],
    }),
  );
  return (page.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

async function fleetsOf(id: string) {
  const page = await ec2.send(new DescribeFleetsCommand({}));
  return (page.Fleets ?? []).filter((f) => f.Tags?.some((t) => t.Key === 'ferry:deployment' && t.Value === id));
}

const tag = (i: { Tags?: Array<{ Key?: string; Value?: string }> }, key: string) =>
  i.Tags?.find((t) => t.Key === key)?.Value;

test('moto EC2 emulator: the client built from the AWS environment reaches it and lists the zones', async () => {
  const zones = await ec2.send(new DescribeAvailabilityZonesCommand({}));
  const names = (zones.AvailabilityZones ?? []).map((z) => z.ZoneName);
  assert.ok(names.includes('us-east-1a'), `zones: ${names.join(', ')}`);
});

test('moto EC2 emulator: apply creates a launch template running the image, and a fleet of tagged instances, spot over an on-demand base', async () => {
  const status = await target.apply(spec('mlp-a', 3));

  const templates = await ec2.send(
    new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:ferry:deployment', Values: ['mlp-a'] }] }),
  );
  assert.equal(templates.LaunchTemplates?.length, 1);
  const template = templates.LaunchTemplates![0];
  assert.equal(tag(template, 'ferry:model'), 'mlp');
  assert.equal(tag(template, 'ferry:revision'), 'default');
  const versions = await ec2.send(
    new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: template.LaunchTemplateId }),
  );
  const data = versions.LaunchTemplateVersions?.[0].LaunchTemplateData;
  assert.equal(data?.MetadataOptions?.HttpTokens, 'required', 'IMDSv2 only');
  const userData = Buffer.from(data?.UserData ?? '', 'base64').toString();
  assert.match(userData, new RegExp(`IMAGE='registry\\.example/ferry/mlp@${DIGEST}'`));
  assert.match(userData, /--cpus 1 --memory 768m --memory-swap 768m/);
  assert.match(userData, /FERRY_AGENT_FERRY_URL='http:\/\/ferry\.example:8080'/);

  const instances = await instancesOf('mlp-a');
  assert.equal(instances.length, 3);
  for (const i of instances) {
    assert.equal(tag(i, 'ferry:deployment'), 'mlp-a');
    assert.equal(tag(i, 'ferry:model'), 'mlp');
    assert.equal(tag(i, 'ferry:revision'), 'default');
  }
  const spot = instances.filter((i) => i.InstanceLifecycle === 'spot');
  assert.equal(spot.length, 2, 'two spot instances');
  assert.equal(instances.length - spot.length, 1, 'one on-demand base instance');
  // Spot goes to the cheapest pool by the catalog's prices (moto allocates all to one pool).
  assert.equal(placement.pools[0].zone, 'us-east-1b');
  assert.equal(placement.pools[0].instanceType, 'c7i.large');
  for (const i of instances) assert.ok(placement.pools.some((p) => p.zone === i.Placement?.AvailabilityZone));

  assert.equal((await fleetsOf('mlp-a')).length, 1, 'one fleet');
  assert.equal(status.desiredReplicas, 3);
  assert.equal(status.instances.length, 3);
  assert.equal(status.replicas.filter((r) => r.ready).length, 3);
  assert.deepEqual(status.spec.image, spec('mlp-a', 3).image);
});

test('moto EC2 emulator: applying the same spec again launches nothing (no second fleet, the same instances)', async () => {
  const before = (await instancesOf('mlp-a')).map((i) => i.InstanceId).sort();
  const fleets = (await fleetsOf('mlp-a')).length;
  await target.apply(spec('mlp-a', 3));
  await target.apply(spec('mlp-a', 3));
  assert.deepEqual((await instancesOf('mlp-a')).map((i) => i.InstanceId).sort(), before);
  assert.equal((await fleetsOf('mlp-a')).length, fleets);
});

test('moto EC2 emulator: scaling keeps the on-demand base; a new image replaces the instances and its template', async () => {
  await target.scale('mlp-a', 1);
  let instances = await instancesOf('mlp-a');
  assert.equal(instances.length, 1);
  assert.notEqual(instances[0].InstanceLifecycle, 'spot', 'the on-demand base stays');
  await target.scale('mlp-a', 2);
  assert.equal((await instancesOf('mlp-a')).length, 2);

  const oldIds = (await instancesOf('mlp-a')).map((i) => i.InstanceId);
  await target.apply(spec('mlp-a', 2, `sha256:${'cd'.repeat(32)}`));
  instances = await instancesOf('mlp-a');
  assert.equal(instances.length, 2);
  assert.ok(
    instances.every((i) => !oldIds.includes(i.InstanceId)),
    'all instances are new',
  );
  const templates = await ec2.send(
    new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:ferry:deployment', Values: ['mlp-a'] }] }),
  );
  assert.equal(templates.LaunchTemplates?.length, 1, "the old spec's template is deleted");
  assert.equal((await target.status('mlp-a')).spec.image?.reference, `sha256:${'cd'.repeat(32)}`);
});

test('moto EC2 emulator: an interrupted spot instance is replaced once, outside its zone', async () => {
  const spotOne = (await instancesOf('mlp-a')).find((i) => i.InstanceLifecycle === 'spot');
  assert.ok(spotOne?.InstanceId);
  const first = await target.replaceInterrupted('mlp-a', spotOne.InstanceId);
  const again = await target.replaceInterrupted('mlp-a', spotOne.InstanceId);
  assert.equal(first.launched.length, 1);
  assert.deepEqual(again.launched, first.launched, 'asking twice launches once');
  const [replacement] = await ec2
    .send(new DescribeInstancesCommand({ InstanceIds: first.launched }))
    .then((p) => (p.Reservations ?? []).flatMap((r) => r.Instances ?? []));
  assert.notEqual(replacement.Placement?.AvailabilityZone, spotOne.Placement?.AvailabilityZone);
  assert.equal(replacement.InstanceLifecycle, 'spot');
  assert.equal(tag(replacement, 'ferry:revision'), 'default');
  // The interrupted one no longer counts: an apply keeps two serving and does not terminate the replacement.
  await target.apply(spec('mlp-a', 2, `sha256:${'cd'.repeat(32)}`));
  const status = await target.status('mlp-a');
  assert.equal(status.replicas.length, 2);
  assert.ok(status.instances.some((i) => i.id === replacement.InstanceId));
});

test('moto EC2 emulator: hibernate terminates the instances and keeps the template; wake launches again', async () => {
  const hibernated = await target.hibernate('mlp-a');
  assert.equal(hibernated.state, 'hibernated');
  assert.equal((await instancesOf('mlp-a')).filter((i) => tag(i, 'ferry:interrupted') === undefined).length, 0);
  const woken = await target.wake('mlp-a');
  assert.equal(woken.state, 'running');
  assert.equal(woken.replicas.length, 2);
});

test("moto EC2 emulator: the cost engine's spot option, priced from the shipped catalog, runs as planned", async () => {
  const catalog = shippedCatalog();
  const model: ModelMeasurements = {
    source: 'test: a small MLP as the optimize stage measures one',
    batch1: { meanMs: 6, p50Ms: 5, p95Ms: 9 },
    threads: 1,
    peakRssBytes: 180 * 2 ** 20,
    modelSizeBytes: 4 * 2 ** 20,
    loadMs: 40,
    coldStartMs: 400,
    coldStartMeasured: true,
    requestBytes: 300,
  };
  const plan = planDeployment({
    model,
    profile: parseProfile('400rps'),
    constraints: { sloP95Ms: 60, providers: ['aws'], regions: ['us-east-1'], arch: 'x86_64', targets: ['ec2'] },
    catalog,
    deployableTargets: ['ec2'],
    deployableOnly: true,
  });
  const option = plan.options.find((o) => o.id === plan.chosen);
  assert.ok(option, plan.error);
  assert.equal(option.strategy, 'vm-spot', `chosen ${option.id}`);
  const choice = ec2ChoiceFromOption(option, catalog);
  assert.deepEqual(
    choice.placement.pools.map((p) => p.zone),
    option.schedule?.zones,
  );
  assert.ok(choice.replicas >= 2, `${choice.replicas} replicas`);
  const planned = new Ec2Target({
    env: { ...moto.env, FERRY_EC2_AMI: ami },
    client: ec2,
    placement: choice.placement,
    readiness: 'instance-state',
    pollMs: 100,
  });
  await planned.apply(spec('mlp-plan', choice.replicas));
  const instances = await instancesOf('mlp-plan');
  assert.equal(instances.length, choice.replicas);
  assert.ok(instances.every((i) => i.InstanceType === option.instanceType));
  assert.ok(instances.every((i) => option.schedule?.zones?.includes(i.Placement?.AvailabilityZone ?? '')));
  assert.equal(
    instances.filter((i) => i.InstanceLifecycle !== 'spot').length,
    choice.placement.onDemandBase,
    'the on-demand base',
  );
  await planned.destroy('mlp-plan');
  assert.equal((await instancesOf('mlp-plan')).length, 0);
});

test('moto EC2 emulator: destroy terminates every instance and deletes the launch template and fleets', async () => {
  await target.apply(spec('mlp-b', 1));
  await target.destroy('mlp-a');
  assert.equal((await instancesOf('mlp-a')).length, 0);
  assert.ok((await instancesOf('mlp-a', ['terminated', 'shutting-down'])).length >= 3);
  const templates = await ec2.send(
    new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:ferry:deployment', Values: ['mlp-a'] }] }),
  );
  assert.equal(templates.LaunchTemplates?.length ?? 0, 0);
  assert.ok((await fleetsOf('mlp-a')).every((f) => String(f.FleetState).startsWith('deleted')));
  await assert.rejects(target.status('mlp-a'), DeploymentNotFoundError);
  await target.destroy('mlp-a'); // idempotent
  // Another deployment is untouched.
  assert.equal((await instancesOf('mlp-b')).length, 1);
  assert.deepEqual(
    (await target.list()).map((d) => d.id),
    ['mlp-b'],
  );
  await target.destroy('mlp-b');
});
