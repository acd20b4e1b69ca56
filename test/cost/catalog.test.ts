/**
 * The price catalog: the shipped snapshot loads and validates, a bad row is refused with a message that
 * names the file, the row and the field, and the content hash follows the content, not its layout.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { canonicalJson } from '../../lib/cost/catalog/canonical';
import {
  buildCatalog,
  CATALOG_DIR,
  CatalogError,
  type CatalogManifest,
  loadCatalog,
  MANIFEST_FILE,
} from '../../lib/cost/catalog/load';

const manifest: CatalogManifest = { schemaVersion: 1, snapshotDate: '2026-12-03', files: ['x.json'] };
const source = { url: 'https://example.com/prices', retrieved: '2026-12-01' };

function instance(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: 'aws',
    region: 'us-east-1',
    instanceType: 'm7g.large',
    family: 'general-purpose',
    vcpus: 2,
    memoryGiB: 8,
    arch: 'arm64',
    onDemandUsdPerHour: 0.0816,
    spotUsdPerHour: { 'us-east-1a': 0.03, 'us-east-1b': 0.032 },
    interruption: '<5%',
    source,
    ...over,
  };
}

function build(rows: unknown[], kind = 'instances') {
  return buildCatalog(manifest, [{ name: 'x.json', content: { kind, rows } }]);
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CatalogError, `expected a CatalogError, got ${err}`);
    return err.message;
  }
  assert.fail('expected the catalog to be refused');
}

test('the shipped catalog loads, validates and covers the providers, regions and kinds it promises', () => {
  const c = loadCatalog();
  assert.equal(c.schemaVersion, 1);
  assert.match(c.snapshotDate, /^\d{4}-\d{2}-\d{2}$/);
  assert.match(c.contentHash, /^[0-9a-f]{64}$/);
  const regions = (p: string) => new Set(c.instances.filter((r) => r.provider === p).map((r) => r.region));
  assert.ok(regions('aws').size >= 3, 'AWS: 3 regions');
  assert.ok(regions('gcp').size >= 2, 'GCP: 2 regions');
  assert.ok(regions('azure').size >= 2, 'Azure: 2 regions');
  for (const p of ['aws', 'gcp', 'azure']) {
    const rows = c.instances.filter((r) => r.provider === p);
    for (const want of ['general-purpose', 'compute-optimized', 'gpu'])
      assert.ok(
        rows.some((r) => r.family === want),
        `${p} has a ${want} type`,
      );
    assert.ok(
      rows.some((r) => r.arch === 'arm64'),
      `${p} has an arm64 type`,
    );
    assert.ok(
      rows.some((r) => r.arch === 'x86_64'),
      `${p} has an x86_64 type`,
    );
    assert.ok(rows.filter((r) => r.accelerator).every((r) => r.family === 'gpu'));
    assert.ok(
      c.egress.some((r) => r.provider === p),
      `${p} has an egress price`,
    );
  }
  for (const service of ['aws-lambda', 'gcp-cloud-run', 'azure-container-apps'])
    assert.ok(
      c.serverless.some((r) => r.service === service),
      `serverless: ${service}`,
    );
  // Every estimate says how it was made.
  for (const r of [...c.instances, ...c.serverless, ...c.egress]) {
    for (const s of [r.source, 'spotSource' in r ? r.spotSource : undefined]) {
      if (s?.estimate) assert.ok(s.note && s.note.length > 20, `${s.url}: an estimate needs a note`);
    }
  }
  // Loading twice gives the same hash.
  assert.equal(loadCatalog().contentHash, c.contentHash);
});

test('a bad row is refused naming the file, the row and the field', () => {
  assert.match(
    refusal(() => build([instance(), instance({ instanceType: 'c7g.large', onDemandUsdPerHour: -1 })])),
    /x\.json row 1 \(c7g\.large in us-east-1\): onDemandUsdPerHour must be a number > 0, got -1/,
  );
  assert.match(
    refusal(() => build([instance({ arch: 'aarch64' })])),
    /row 0 .*: arch must be one of x86_64, arm64/,
  );
  assert.match(
    refusal(() => build([instance({ vcpu: 2 })])),
    /row 0 .*: unknown field "vcpu"/,
  );
  assert.match(
    refusal(() => build([instance({ source: { url: 'prices page', retrieved: '2026-12-01' } })])),
    /row 0 .*: source: url must be an https:\/\/ URL, got "prices page"/,
  );
  assert.match(
    refusal(() => build([instance({ source: { ...source, retrieved: '3 Dec 2026' } })])),
    /source: retrieved must be a date YYYY-MM-DD/,
  );
  assert.match(
    refusal(() => build([instance({ spotUsdPerHour: { 'us-east-1a': 'cheap' } })])),
    /spotUsdPerHour: us-east-1a must be a number > 0, got "cheap"/,
  );
  assert.match(
    refusal(() => build([instance({ spotUsdPerHour: { 'us-west-2a': 0.03 } })])),
    /zone "us-west-2a" is not in region us-east-1/,
  );
  assert.match(
    refusal(() => build([instance({ spotUsdPerHour: { 'us-east-1a': 0.5 } })])),
    /spotUsdPerHour\.us-east-1a \(0\.5\) is above the on-demand price/,
  );
  assert.match(
    refusal(() => build([instance({ family: 'gpu' })])),
    /accelerator is required for a gpu family row/,
  );
  assert.match(
    refusal(() => build([instance(), instance()])),
    /aws\/us-east-1\/m7g\.large appears more than once/,
  );
  assert.match(
    refusal(() => build([instance({ source: { ...source, retrieved: '2027-01-01' } })])),
    /retrieved 2027-01-01, after the snapshot date 2026-12-03/,
  );
  assert.match(
    refusal(() => build([{ provider: 'aws', region: 'us-east-1', usdPerGb: 0, source }], 'egress')),
    /x\.json row 0 \(aws in us-east-1\): usdPerGb must be a number > 0, got 0/,
  );
  assert.match(
    refusal(() => buildCatalog(manifest, [{ name: 'y.json', content: [] }])),
    /y\.json: must be \{ "kind"/,
  );
  // Every problem is reported at once, not only the first.
  const many = refusal(() => build([instance({ vcpus: 0 }), instance({ instanceType: 'b', memoryGiB: 'lots' })]));
  assert.match(many, /2 problems/);
});

test('a manifest or a file that cannot be read is refused by name', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-catalog-'));
  try {
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ ...manifest, schemaVersion: 2 }));
    assert.match(
      refusal(() => loadCatalog(dir)),
      /catalog\.json: schemaVersion must be 1/,
    );
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
    assert.match(
      refusal(() => loadCatalog(dir)),
      /x\.json: cannot be read \(ENOENT\)/,
    );
    fs.writeFileSync(path.join(dir, 'x.json'), '{ "kind": "instances", rows: [] }');
    assert.match(
      refusal(() => loadCatalog(dir)),
      /x\.json: is not JSON/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the content hash changes with the content, not with key order, row order or file layout', () => {
  const a = build([instance(), instance({ instanceType: 'c7g.large', memoryGiB: 4 })]);
  // Same rows, keys reversed, rows reversed.
  const reversed = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());
  const b = build([reversed(instance({ instanceType: 'c7g.large', memoryGiB: 4 })), reversed(instance())]);
  assert.equal(b.contentHash, a.contentHash);
  // Same rows split over two files.
  const split = buildCatalog({ ...manifest, files: ['p.json', 'q.json'] }, [
    { name: 'p.json', content: { kind: 'instances', rows: [instance()] } },
    { name: 'q.json', content: { rows: [instance({ instanceType: 'c7g.large', memoryGiB: 4 })], kind: 'instances' } },
  ]);
  assert.equal(split.contentHash, a.contentHash);
  // Any figure, source or the date changes it.
  assert.notEqual(build([instance({ onDemandUsdPerHour: 0.0817 })]).contentHash, build([instance()]).contentHash);
  assert.notEqual(
    build([instance({ source: { ...source, url: 'https://example.com/other' } })]).contentHash,
    build([instance()]).contentHash,
  );
  const later = buildCatalog({ ...manifest, snapshotDate: '2026-12-04' }, [
    { name: 'x.json', content: { kind: 'instances', rows: [instance()] } },
  ]);
  assert.notEqual(later.contentHash, build([instance()]).contentHash);
});

test('canonical JSON sorts keys at every level and drops undefined members', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}',
  );
});

test('the shipped data files are the ones the manifest names', () => {
  const named = JSON.parse(fs.readFileSync(path.join(CATALOG_DIR, MANIFEST_FILE), 'utf8')).files as string[];
  const present = fs.readdirSync(CATALOG_DIR).filter((f) => f.endsWith('.json') && f !== MANIFEST_FILE);
  assert.deepEqual([...present].sort(), [...named].sort(), 'a data file the manifest does not name would be ignored');
});
