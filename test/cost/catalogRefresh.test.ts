/**
 * `ferry prices refresh`: each provider format's parser on small hand-written files in that format
 * (test/cost/fixtures/, written after the formats' published schemas) gives the rows it should and
 * leaves out what is not a plain Linux on-demand or spot price; the refreshed catalog replaces only the
 * regions the files cover, validates, and loads back with the same hash.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { pricesRefreshCommand, renderPrices } from '../../client/cli/prices';
import { instanceKey } from '../../lib/cost/catalog/canonical';
import { filterCatalog } from '../../lib/cost/catalog/filter';
import { loadCatalog, shippedCatalog } from '../../lib/cost/catalog/load';
import { parseAwsOffer } from '../../lib/cost/catalog/refresh/awsOffer';
import {
  applyAwsSpot,
  parseAwsSpotHistory,
  parseSpotAdvisor,
  regionOfZone,
} from '../../lib/cost/catalog/refresh/awsSpot';
import { parseAzureRetail } from '../../lib/cost/catalog/refresh/azureRetail';
import { parseGcpSkus } from '../../lib/cost/catalog/refresh/gcpSkus';
import { RefreshError } from '../../lib/cost/catalog/refresh/input';
import { refreshCatalog, writeCatalog } from '../../lib/cost/catalog/refresh/refresh';

const fixtures = path.join(__dirname, 'fixtures');
const fixture = (name: string) => path.join(fixtures, name);
const read = (name: string) => JSON.parse(fs.readFileSync(fixture(name), 'utf8'));
const opts = { retrieved: '2026-12-03' };
const run = promisify(execFile);

test('AWS offer file: the plain Linux on-demand rate of the default families, sized from the attributes', () => {
  const { rows, skipped } = parseAwsOffer(read('aws-offer-us-east-1.json'), 'offer.json', opts);
  assert.deepEqual(
    rows.map((r) => [r.instanceType, r.onDemandUsdPerHour, r.vcpus, r.memoryGiB, r.arch, r.family]),
    [
      ['m7g.large', 0.0816, 2, 8, 'arm64', 'general-purpose'],
      ['c7i.large', 0.08925, 2, 4, 'x86_64', 'compute-optimized'],
      ['g5.xlarge', 1.006, 4, 16, 'x86_64', 'gpu'],
    ],
  );
  assert.deepEqual(rows[2].accelerator, { kind: 'nvidia-a10g', count: 1, memoryGiB: 24 });
  assert.equal(rows[0].region, 'us-east-1');
  assert.equal(
    rows[0].source.url,
    'https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json',
  );
  assert.equal(rows[0].source.retrieved, '2026-12-03');
  assert.equal(rows[0].source.estimate, undefined);
  assert.match(rows[0].source.note ?? '', /version 20261201000000 .*sku AAAA1111M7GL/);
  assert.deepEqual(skipped, [
    'dl1.24xlarge in us-east-1: its GPU model is not in the shapes table (lib/cost/catalog/refresh/shapes.ts)',
  ]);
  // --types widens past the default families; --regions narrows.
  const r7g = parseAwsOffer(read('aws-offer-us-east-1.json'), 'offer.json', { ...opts, types: ['r7g.*'] }).rows;
  assert.deepEqual(
    r7g.map((r) => [r.instanceType, r.family, r.onDemandUsdPerHour]),
    [['r7g.large', 'memory-optimized', 0.1071]],
  );
  assert.equal(parseAwsOffer(read('aws-offer-us-east-1.json'), 'o', { ...opts, regions: ['eu-*'] }).rows.length, 0);
  assert.throws(() => parseAwsOffer({ products: {} }, 'bad.json', opts), /bad\.json: not an AWS Price List offer file/);
});

test('AWS spot history: the newest Linux price per type and zone; the advisor gives the bands', () => {
  const spot = parseAwsSpotHistory([{ file: 'spot.json', content: read('aws-spot-us-east-1.json') }]);
  assert.deepEqual(spot.byType.get('us-east-1/m7g.large'), {
    'us-east-1a': 0.0329,
    'us-east-1b': 0.0308,
    'us-east-1c': 0.0352,
  });
  assert.deepEqual(spot.byType.get('us-east-1/c7i.large'), { 'us-east-1d': 0.0412 });
  assert.equal(spot.newest, '2026-12-02T18:10:00+00:00', 'the Windows entry is not a Linux price');
  assert.equal(regionOfZone('us-east-1-bos-1a'), 'us-east-1');
  const bands = parseSpotAdvisor(read('aws-spot-advisor.json'), 'advisor.json');
  assert.equal(bands.get('us-east-1/m7g.large'), '<5%');
  assert.equal(bands.get('us-east-1/c7i.large'), '10-15%');
  assert.equal(bands.get('eu-west-1/m7g.large'), '5-10%');
  assert.throws(
    () => parseSpotAdvisor({ ranges: [{ index: 0, label: 'rare' }], spot_advisor: {} }, 'adv.json'),
    /adv\.json: range label "rare" is not one of/,
  );
  assert.throws(
    () => parseAwsSpotHistory([{ file: 's.json', content: { SpotPriceHistory: [{}] } }]),
    /s\.json: SpotPriceHistory\[0\] lacks/,
  );

  const { rows } = parseAwsOffer(read('aws-offer-us-east-1.json'), 'offer.json', opts);
  const skipped: string[] = [];
  const withSpot = applyAwsSpot(rows, spot, bands, opts, skipped);
  const g5 = withSpot.find((r) => r.instanceType === 'g5.xlarge')!;
  assert.deepEqual(g5.spotUsdPerHour, { 'us-east-1b': 0.4123 }, 'a zone above on-demand is left out');
  assert.deepEqual(skipped, ['g5.xlarge spot in us-east-1d: above the on-demand price, left out']);
  const m7g = withSpot.find((r) => r.instanceType === 'm7g.large')!;
  assert.equal(m7g.interruption, '<5%');
  assert.equal(m7g.spotSource?.estimate, undefined);
  assert.match(m7g.spotSource?.note ?? '', /Spot Instance Advisor/);
});

test('GCP Cloud Billing SKUs: a machine type is its vCPUs x core SKU + GiB x RAM SKU (+ GPUs), on demand and spot', () => {
  const { rows } = parseGcpSkus([{ file: 'gcp.json', content: read('gcp-skus.json') }], opts);
  const row = (region: string, type: string) => rows.find((r) => r.region === region && r.instanceType === type);
  const n2 = row('us-central1', 'n2-standard-4')!;
  assert.equal(n2.onDemandUsdPerHour, 0.194236);
  assert.deepEqual(n2.spotUsdPerHour, {
    'us-central1-a': 0.059952,
    'us-central1-b': 0.059952,
    'us-central1-c': 0.059952,
    'us-central1-f': 0.059952,
  });
  assert.match(
    n2.source.note ?? '',
    /SKUs A1B2-0001-N2CO, A1B2-0002-N2RA/,
    'custom and commitment SKUs are not the N2 price',
  );
  assert.equal(row('us-central1', 'n2-standard-2')!.onDemandUsdPerHour, 0.097118);
  assert.equal(
    row('us-east1', 'n2-standard-2')!.onDemandUsdPerHour,
    0.097118,
    'a SKU applies to every region it lists',
  );
  assert.equal(row('europe-west4', 'n2-standard-2')!.onDemandUsdPerHour, 0.106908);
  assert.equal(row('europe-west4', 'n2-standard-2')!.spotUsdPerHour, undefined, 'no spot SKU there: no spot price');
  const t2a = row('us-central1', 't2a-standard-2')!;
  assert.deepEqual([t2a.onDemandUsdPerHour, t2a.arch], [0.077, 'arm64']);
  const g2 = row('us-central1', 'g2-standard-4')!;
  assert.equal(g2.onDemandUsdPerHour, 0.705784);
  assert.deepEqual(g2.accelerator, { kind: 'nvidia-l4', count: 1, memoryGiB: 24 });
  assert.equal(row('us-central1', 'c2-standard-4'), undefined, 'no Compute optimized SKUs in the file: no C2 rows');
  const eu = parseGcpSkus([{ file: 'gcp.json', content: read('gcp-skus.json') }], { ...opts, regions: ['europe-*'] });
  assert.deepEqual([...new Set(eu.rows.map((r) => r.region))], ['europe-west4']);
  assert.throws(
    () => parseGcpSkus([{ file: 'g.json', content: { services: [] } }], opts),
    /g\.json: not a Cloud Billing Catalog SKU list/,
  );
});

test('Azure Retail Prices: the pay-as-you-go Linux price and the Spot price of the sizes in the shapes table', () => {
  const { rows } = parseAzureRetail([{ file: 'az.json', content: read('azure-retail.json') }], opts);
  assert.deepEqual(
    rows.map((r) => [r.region, r.instanceType, r.onDemandUsdPerHour, r.arch]),
    [
      ['eastus', 'Standard_D2ps_v5', 0.077, 'arm64'],
      ['eastus', 'Standard_D2s_v5', 0.096, 'x86_64'],
      ['eastus', 'Standard_NC4as_T4_v3', 0.526, 'x86_64'],
      ['southcentralus', 'Standard_D2s_v5', 0.096, 'x86_64'],
    ],
  );
  const d2s = rows[1];
  assert.deepEqual(d2s.spotUsdPerHour, { 'eastus-1': 0.0192, 'eastus-2': 0.0192, 'eastus-3': 0.0192 });
  assert.match(d2s.source.note ?? '', /meter 0e1d5a17-0001/, 'not the Windows, reservation or dev/test meter');
  assert.equal(rows[0].spotUsdPerHour, undefined);
  assert.deepEqual(rows[2].accelerator, { kind: 'nvidia-t4', count: 1, memoryGiB: 16 });
  assert.deepEqual(rows[3].spotUsdPerHour, { southcentralus: 0.0211 }, 'a region without zones is keyed by its name');
  assert.throws(
    () =>
      parseAzureRetail(
        [
          {
            file: 'a.json',
            content: { Items: [{ type: 'Consumption', unitOfMeasure: '1 Hour', currencyCode: 'EUR' }] },
          },
        ],
        opts,
      ),
    /a\.json: Items\[0\] is priced in EUR/,
  );
});

test('a refresh replaces the regions the files cover, keeps every other row, validates, and loads back', () => {
  const base = shippedCatalog();
  const result = refreshCatalog(
    {
      awsOffer: [fixture('aws-offer-us-east-1.json')],
      awsSpot: [fixture('aws-spot-us-east-1.json')],
      awsAdvisor: fixture('aws-spot-advisor.json'),
      gcpSkus: [fixture('gcp-skus.json')],
      azureRetail: [fixture('azure-retail.json')],
    },
    { retrieved: '2026-12-04' },
    base,
  );
  const c = result.catalog;
  assert.equal(c.snapshotDate, '2026-12-04');
  const keys = (rows: typeof c.instances) => rows.map(instanceKey);
  // us-east-1 now holds exactly the offer file's rows; us-west-2 is the base's, untouched.
  assert.deepEqual(keys(c.instances.filter((r) => r.provider === 'aws' && r.region === 'us-east-1')).sort(), [
    'aws/us-east-1/c7i.large',
    'aws/us-east-1/g5.xlarge',
    'aws/us-east-1/m7g.large',
  ]);
  const kept = (p: string, region: string) =>
    [c, base].map((x) => x.instances.filter((r) => r.provider === p && r.region === region));
  const [nowWest, wasWest] = kept('aws', 'us-west-2');
  assert.deepEqual(nowWest, wasWest);
  const [nowAzWe, wasAzWe] = kept('azure', 'westeurope');
  assert.deepEqual(nowAzWe, wasAzWe);
  assert.deepEqual(c.serverless, base.serverless);
  assert.deepEqual(c.egress, base.egress);
  assert.ok(c.instances.some((r) => r.provider === 'azure' && r.region === 'southcentralus'));
  assert.notEqual(c.contentHash, base.contentHash);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-refresh-'));
  try {
    writeCatalog(dir, result);
    assert.equal(loadCatalog(dir).contentHash, c.contentHash);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => refreshCatalog({ awsOffer: [fixture('missing.json')] }, opts, base), RefreshError);
  // A date before the base rows' retrieval dates would not be their snapshot.
  assert.throws(
    () => refreshCatalog({ gcpSkus: [fixture('gcp-skus.json')] }, { retrieved: '2026-01-01' }, base),
    /after the snapshot date 2026-01-01/,
  );
});

test('ferry prices refresh writes a catalog ferry prices reads, and refuses to run without a file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-refresh-cli-'));
  const ferry = path.resolve(__dirname, '../../bin/ferry');
  try {
    const args = [
      'prices',
      'refresh',
      '--azure-retail',
      fixture('azure-retail.json'),
      '--date',
      '2026-12-03',
      '--out',
      dir,
    ];
    const { stdout } = await run(ferry, args, { timeout: 60_000 });
    assert.match(stdout, /refreshed azure eastus: 3 instance types/);
    const shown = renderPrices(filterCatalog(loadCatalog(dir), { provider: 'azure', region: 'southcentralus' }));
    assert.ok(shown.some((l) => /Standard_D2s_v5 .* \$0\.096 /.test(l)));
    await assert.rejects(pricesRefreshCommand({ out: dir }), /give at least one price file/);
    await assert.rejects(
      pricesRefreshCommand({ out: dir, gcpSkus: [fixture('gcp-skus.json')], date: '3/12/2026' }),
      /--date must be a date YYYY-MM-DD/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
