/**
 * `ferry prices`: the filters select the rows they name (provider, region pattern, minimum vCPUs,
 * architecture), the tables carry the snapshot's date and hash and mark estimates, and bad flag values are
 * refused with Ferry's message (one run of bin/ferry checks the command line end to end).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parsePricesFlags, renderPrices } from '../../client/cli/prices';
import { filterCatalog, regionMatcher } from '../../lib/cost/catalog/filter';
import { shippedCatalog } from '../../lib/cost/catalog/load';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');

test('the filters keep exactly the rows that match every one given', () => {
  const c = shippedCatalog();
  const f = filterCatalog(c, { provider: 'aws', region: 'us-*', minVcpus: 4, arch: 'arm64' });
  assert.ok(f.instances.length > 0);
  assert.ok(
    f.instances.every((r) => r.provider === 'aws' && r.region.startsWith('us-') && r.vcpus >= 4 && r.arch === 'arm64'),
  );
  const expected = c.instances.filter(
    (r) => r.provider === 'aws' && /^us-/.test(r.region) && r.vcpus >= 4 && r.arch === 'arm64',
  );
  assert.deepEqual(f.instances, expected);
  assert.ok(f.serverless.every((r) => r.provider === 'aws' && r.arch === 'arm64' && r.limits.maxVcpus >= 4));
  assert.ok(f.egress.every((r) => r.provider === 'aws' && r.region.startsWith('us-')));
  // The snapshot's identity is kept: the hash names the catalog the rows came from.
  assert.equal(f.contentHash, c.contentHash);
  // No filter keeps everything.
  assert.deepEqual(filterCatalog(c, {}).instances, c.instances);
  assert.equal(filterCatalog(c, { region: 'mars-1' }).instances.length, 0);
});

test('a region pattern matches whole names, with * for any run of characters', () => {
  const m = regionMatcher('us-*');
  assert.ok(m('us-east-1') && m('us-central1'));
  assert.ok(!m('eu-west-1') && !m('aus-east'));
  assert.ok(regionMatcher('eu-west-1')('eu-west-1'));
  assert.ok(!regionMatcher('eu-west-1')('eu-west-10'));
  assert.ok(regionMatcher('*west*')('europe-west4'));
  assert.ok(regionMatcher(undefined)('anything'));
});

test('the tables name the snapshot and mark estimates; an empty match says so', () => {
  const c = shippedCatalog();
  const lines = renderPrices(filterCatalog(c, { provider: 'gcp', region: 'us-central1' }));
  assert.match(lines[0], new RegExp(`of ${c.snapshotDate} .*sha256 ${c.contentHash}`));
  const row = (type: string) => lines.find((l) => l.includes(` ${type} `)) ?? '';
  assert.match(row('n2-standard-4'), /\$0\.1942 /, 'a list price carries no mark');
  assert.match(row('g2-standard-8'), /\$0\.8536 /);
  const west = renderPrices(filterCatalog(c, { provider: 'aws', region: 'us-west-2' }));
  assert.match(west.find((l) => l.includes(' m7i.large ')) ?? '', /\$0\.1008\*/, 'an estimate is marked *');
  assert.ok(lines.some((l) => l.startsWith('Serverless (1):')));
  assert.ok(lines.some((l) => l.startsWith('Internet egress (1):')));
  assert.deepEqual(renderPrices(filterCatalog(c, { region: 'mars-1' })).slice(-1), ['No rows match.']);
});

test('bad flag values are refused by name', () => {
  assert.throws(() => parsePricesFlags({ provider: 'ibm' }), /--provider must be one of aws, gcp, azure, got "ibm"/);
  assert.throws(() => parsePricesFlags({ arch: 'aarch64' }), /--arch must be one of x86_64, arm64/);
  assert.throws(() => parsePricesFlags({ minVcpus: '0' }), /--min-vcpus must be a positive integer/);
  assert.throws(() => parsePricesFlags({ region: 'us east' }), /--region must be a region name or a pattern/);
  assert.deepEqual(parsePricesFlags({ provider: 'gcp', minVcpus: '4', arch: 'arm64' }), {
    provider: 'gcp',
    region: undefined,
    minVcpus: 4,
    arch: 'arm64',
  });
});

test('ferry prices --json prints the filtered rows with their sources', async () => {
  const { stdout } = await run(ferryBin, ['prices', '--provider', 'azure', '--arch', 'arm64', '--json'], {
    timeout: 60_000,
  });
  const out = JSON.parse(stdout);
  assert.equal(out.contentHash, shippedCatalog().contentHash);
  assert.ok(out.instances.length > 0);
  for (const r of out.instances) {
    assert.equal(r.provider, 'azure');
    assert.equal(r.arch, 'arm64');
    assert.match(r.source.url, /^https:\/\//);
  }
});
