/** The ec2 target's pure parts: pools from catalog rows, the fleet request, user data, what scaling keeps. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { InstancePrice } from '../../lib/cost/catalog/types';
import { keepForBase, revisionsOf } from '../../lib/targets/ec2/ec2Target';
import {
  buildFleetRequest,
  type FleetRequest,
  launchedCounts,
  onDemandFallback,
} from '../../lib/targets/ec2/fleetRequest';
import type { FerryInstance } from '../../lib/targets/ec2/instances';
import { launchTemplateName } from '../../lib/targets/ec2/launchTemplate';
import { assertPlacement, cheapestPools, withoutZones } from '../../lib/targets/ec2/placement';
import { imageReference, renderUserData } from '../../lib/targets/ec2/userData';

const row = (
  instanceType: string,
  arch: 'x86_64' | 'arm64',
  od: number,
  spot: Record<string, number>,
  region = 'eu-west-1',
): InstancePrice => ({
  provider: 'aws',
  region,
  instanceType,
  family: 'general-purpose',
  vcpus: 2,
  memoryGiB: 8,
  arch,
  onDemandUsdPerHour: od,
  spotUsdPerHour: spot,
  source: { url: 'test', retrieved: '2026-12-01' },
});

const catalog = [
  row('m7i.large', 'x86_64', 0.1, { 'eu-west-1a': 0.05, 'eu-west-1b': 0.03, 'eu-west-1c': 0.04 }),
  row('c7i.large', 'x86_64', 0.09, { 'eu-west-1a': 0.035, 'eu-west-1b': 0.06 }),
  row('m7g.large', 'arm64', 0.08, { 'eu-west-1a': 0.02 }),
  row('m7i.large', 'x86_64', 0.1, { 'us-east-1a': 0.001 }, 'us-east-1'),
];

test('pools: the chosen types in the region, cheapest spot first, at most maxPools, avoided zones left out', () => {
  const pools = cheapestPools(catalog, { region: 'eu-west-1', instanceTypes: ['m7i.large', 'c7i.large'], maxPools: 4 });
  assert.deepEqual(
    pools.map((p) => `${p.instanceType}@${p.zone}=${p.spotUsdPerHour}`),
    [
      'm7i.large@eu-west-1b=0.03',
      'c7i.large@eu-west-1a=0.035',
      'm7i.large@eu-west-1c=0.04',
      'm7i.large@eu-west-1a=0.05',
    ],
  );
  const avoiding = cheapestPools(catalog, {
    region: 'eu-west-1',
    instanceTypes: ['m7i.large'],
    avoidZones: ['eu-west-1b'],
  });
  assert.deepEqual(
    avoiding.map((p) => p.zone),
    ['eu-west-1c', 'eu-west-1a'],
  );
  const placement = { region: 'eu-west-1', pools, onDemandBase: 1 };
  assert.deepEqual(
    withoutZones(placement, ['eu-west-1b']).pools.map((p) => p.zone),
    ['eu-west-1a', 'eu-west-1c', 'eu-west-1a'],
  );
  assert.equal(withoutZones(placement, ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']).pools.length, 4, 'never none');
  assertPlacement(placement);
  assert.throws(
    () =>
      assertPlacement({
        ...placement,
        pools: [...pools, ...cheapestPools(catalog, { region: 'eu-west-1', instanceTypes: ['m7g.large'] })],
      }),
    /one architecture/,
  );
  assert.throws(() => assertPlacement({ ...placement, region: 'us-east-1' }), /not in region/);
  assert.throws(() => assertPlacement({ ...placement, pools: [] }), /at least one pool/);
});

const request: FleetRequest = {
  launchTemplateId: 'lt-1',
  launchTemplateVersion: '1',
  pools: cheapestPools(catalog, { region: 'eu-west-1', instanceTypes: ['m7i.large', 'c7i.large'], maxPools: 3 }),
  subnets: { 'eu-west-1a': 'subnet-a', 'eu-west-1b': 'subnet-b' },
  spot: 3,
  onDemand: 1,
  tags: [{ Key: 'ferry:deployment', Value: 'd' }],
  clientToken: 'tok',
};

test('fleet request: instant, price-capacity-optimized spot over an on-demand base, overrides in price order', () => {
  const r = buildFleetRequest(request);
  assert.equal(r.Type, 'instant');
  assert.equal(r.ClientToken, 'tok');
  assert.equal(r.SpotOptions?.AllocationStrategy, 'price-capacity-optimized');
  assert.deepEqual(r.TargetCapacitySpecification, {
    TotalTargetCapacity: 4,
    OnDemandTargetCapacity: 1,
    SpotTargetCapacity: 3,
    DefaultTargetCapacityType: 'spot',
  });
  assert.deepEqual(r.LaunchTemplateConfigs?.[0].Overrides, [
    { InstanceType: 'm7i.large', SubnetId: 'subnet-b', Priority: 0 },
    { InstanceType: 'c7i.large', SubnetId: 'subnet-a', Priority: 1 },
    { InstanceType: 'm7i.large', AvailabilityZone: 'eu-west-1c', Priority: 2 },
  ]);
  assert.deepEqual(
    r.TagSpecifications?.map((t) => t.ResourceType),
    ['instance', 'volume', 'fleet'],
  );
  assert.throws(() => buildFleetRequest({ ...request, spot: 0, onDemand: 0 }), /at least one/);
});

test('on-demand fallback: the spot an instant fleet could not launch is asked for on demand, with its own token', () => {
  const launched = launchedCounts([
    { Lifecycle: 'spot', InstanceIds: ['i-1'] },
    { Lifecycle: 'on-demand', InstanceIds: ['i-2'] },
  ]);
  assert.deepEqual(launched, { spot: 1, onDemand: 1, ids: ['i-1', 'i-2'] });
  const fallback = onDemandFallback(request, launched);
  assert.equal(fallback?.spot, 0);
  assert.equal(fallback?.onDemand, 2);
  assert.notEqual(fallback?.clientToken, request.clientToken);
  assert.equal(onDemandFallback(request, { spot: 3, onDemand: 1 }), undefined);
});

const inst = (id: string, lifecycle: 'spot' | 'on-demand', launchedAt: string): FerryInstance => ({
  id,
  deployment: 'd',
  revision: 'default',
  spec: 's',
  lifecycle,
  instanceType: 'm7i.large',
  zone: 'eu-west-1a',
  state: 'running',
  launchedAt,
  interrupted: false,
});

test('scaling down keeps the on-demand base first, then spot, oldest first', () => {
  const current = [
    inst('od-new', 'on-demand', '2026-12-03T10:05:00Z'),
    inst('spot-old', 'spot', '2026-12-03T10:00:00Z'),
    inst('od-old', 'on-demand', '2026-12-03T10:01:00Z'),
    inst('spot-new', 'spot', '2026-12-03T10:09:00Z'),
  ];
  const ids = (xs: FerryInstance[]) => xs.map((i) => i.id);
  assert.deepEqual(ids(keepForBase(current, 2, 1).kept), ['od-old', 'spot-old']);
  assert.deepEqual(ids(keepForBase(current, 2, 1).excess), ['spot-new', 'od-new']);
  assert.deepEqual(ids(keepForBase(current, 1, 0).kept), ['spot-old']);
  assert.deepEqual(ids(keepForBase(current, 0, 2).excess).length, 4);
});

test('revisions: the single image is revision "default"; model directories are refused', () => {
  const image = { registry: 'https://r.example', repository: 'ferry/m', reference: `sha256:${'0'.repeat(64)}` };
  assert.deepEqual(revisionsOf({ id: 'd', model: 'm', replicas: 2, image }), [{ name: 'default', image, replicas: 2 }]);
  assert.deepEqual(
    revisionsOf({
      id: 'd',
      model: 'm',
      replicas: 2,
      revisions: [
        { name: 'v1', image },
        { name: 'v2', image, replicas: 1 },
      ],
    }).map((r) => r.replicas),
    [2, 1],
  );
  assert.throws(() => revisionsOf({ id: 'd', model: 'm', modelDir: '/x' }), /runs images/);
  assert.equal(launchTemplateName('my.model-1', 'v 2', 'abcdef0123456789'), 'ferry-my.model-1-v_2-abcdef012345');
});

test('user data: a bash script that pulls the digest-pinned image, runs it with its limits, and starts the agent', () => {
  const agentScript = "console.log('agent'); // it's quoted\n";
  const digest = `sha256:${'f'.repeat(64)}`;
  const script = renderUserData({
    deployment: 'mlp-1',
    model: 'mlp',
    revision: 'default',
    image: { registry: 'http://10.0.0.5:5000', repository: 'ferry/mlp', reference: digest },
    resources: { cpus: 0.5, memoryMb: 512 },
    port: 8000,
    drainTimeoutMs: 100_000,
    agentScript,
    controlUrl: "http://ferry.internal:8080/it's",
  });
  // bash parses it (syntax only; nothing runs)
  execFileSync('bash', ['-n'], { input: script });
  assert.match(script, /^#!\/bin\/bash\n/);
  assert.match(script, new RegExp(`IMAGE='10\\.0\\.0\\.5:5000/ferry/mlp@${digest}'`));
  assert.match(script, /PULL_FLAGS='--tls-verify=false'/, 'plain-HTTP registry');
  assert.match(script, /--cpus 0\.5 --memory 512m --memory-swap 512m/);
  assert.match(script, /-e FERRY_DRAIN_TIMEOUT_MS=100000/);
  assert.match(script, /-p 8000:8000 "\$IMAGE"/);
  assert.match(script, /--network host --pid host/);
  assert.match(script, /FERRY_AGENT_FERRY_URL='http:\/\/ferry\.internal:8080\/it'\\''s'/);
  const packed = /echo '([A-Za-z0-9+/=]+)' \| base64 -d \| gunzip/.exec(script)?.[1];
  assert.ok(packed);
  assert.equal(gunzipSync(Buffer.from(packed, 'base64')).toString(), agentScript);

  assert.throws(
    () => imageReference({ registry: 'https://r.example', repository: 'ferry/mlp', reference: 'latest' }),
    /pinned by digest/,
  );
  assert.deepEqual(imageReference({ registry: 'registry.example:443', repository: 'a/b', reference: digest }), {
    ref: `registry.example/a/b@${digest}`,
    plainHttp: false,
  });
  assert.throws(
    () =>
      renderUserData({
        deployment: 'd',
        model: 'm',
        revision: 'r',
        image: { registry: 'https://r.example', repository: 'a', reference: digest },
        resources: { cpus: 1, memoryMb: 512 },
        port: 8000,
        drainTimeoutMs: 1,
        agentScript: randomBytes(20_000).toString('hex'), // incompressible
      }),
    /at most 16384/,
  );
});
