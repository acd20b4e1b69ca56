/**
 * The price catalog from its data files: `data/catalog.json` names the snapshot (schema version, date)
 * and the files that hold its rows; each of those is `{ "kind": "instances" | "serverless" | "egress",
 * "rows": [...] }`. Every row is validated (validate.ts), no row may appear twice, and the content hash is
 * computed over the canonical content (canonical.ts), so a catalog in hand says exactly what it holds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contentHash, egressKey, instanceKey, serverlessKey, sortByKey } from './canonical';
import type { PriceCatalog } from './types';
import { CatalogError, type CheckedRows, checkRows, isIsoDate, ROW_KINDS, type RowKind } from './validate';

export { CatalogError } from './validate';

/** The snapshot shipped in the repo. */
export const CATALOG_DIR = path.join(__dirname, 'data');
export const MANIFEST_FILE = 'catalog.json';

export interface CatalogManifest {
  schemaVersion: 1;
  snapshotDate: string;
  /** The data files, relative to the manifest. */
  files: string[];
}

/** One data file as parsed JSON, with the name messages use for it. */
export interface CatalogFile {
  name: string;
  content: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkManifest(raw: unknown, name = MANIFEST_FILE): CatalogManifest {
  const problems: string[] = [];
  if (!isObj(raw)) throw new CatalogError([`${name}: must be an object`]);
  if (raw.schemaVersion !== 1)
    problems.push(
      `${name}: schemaVersion must be 1 (the format this loader reads), got ${JSON.stringify(raw.schemaVersion)}`,
    );
  if (!isIsoDate(raw.snapshotDate))
    problems.push(`${name}: snapshotDate must be a date YYYY-MM-DD, got ${JSON.stringify(raw.snapshotDate)}`);
  const files = raw.files;
  if (!Array.isArray(files) || !files.length || !files.every((f) => typeof f === 'string' && /^[\w.-]+\.json$/.test(f)))
    problems.push(`${name}: files must be a non-empty list of .json file names, got ${JSON.stringify(files)}`);
  for (const k of Object.keys(raw)) {
    if (!['schemaVersion', 'snapshotDate', 'files'].includes(k))
      problems.push(`${name}: unknown field ${JSON.stringify(k)}`);
  }
  if (problems.length) throw new CatalogError(problems);
  return raw as unknown as CatalogManifest;
}

/** Validates the rows of every file and assembles the catalog; all problems are reported together. */
export function buildCatalog(manifest: CatalogManifest, files: CatalogFile[]): PriceCatalog {
  const problems: string[] = [];
  const all: CheckedRows = { instances: [], serverless: [], egress: [] };
  for (const file of files) {
    const c = file.content;
    if (!isObj(c) || !ROW_KINDS.includes(c.kind as RowKind) || !Array.isArray(c.rows)) {
      problems.push(`${file.name}: must be { "kind": ${ROW_KINDS.map((k) => `"${k}"`).join(' | ')}, "rows": [...] }`);
      continue;
    }
    const extra = Object.keys(c).filter((k) => k !== 'kind' && k !== 'rows');
    if (extra.length) problems.push(`${file.name}: unknown field ${JSON.stringify(extra[0])}`);
    const rows = checkRows(file.name, c.kind as RowKind, c.rows, problems);
    all.instances.push(...rows.instances);
    all.serverless.push(...rows.serverless);
    all.egress.push(...rows.egress);
  }
  const checkUnique = <T>(rows: T[], key: (r: T) => string) => {
    const seen = new Set<string>();
    for (const r of rows) {
      const k = key(r);
      if (seen.has(k)) problems.push(`${k} appears more than once`);
      seen.add(k);
    }
  };
  checkUnique(all.instances, instanceKey);
  checkUnique(all.serverless, serverlessKey);
  checkUnique(all.egress, egressKey);
  // A figure read after the snapshot's date is not part of that snapshot.
  for (const r of [...all.instances, ...all.serverless, ...all.egress]) {
    const late = [r.source, 'spotSource' in r ? r.spotSource : undefined].find(
      (s) => s && s.retrieved > manifest.snapshotDate,
    );
    if (late)
      problems.push(`${late.url}: retrieved ${late.retrieved}, after the snapshot date ${manifest.snapshotDate}`);
  }
  if (problems.length) throw new CatalogError(problems);

  const body = {
    schemaVersion: manifest.schemaVersion,
    snapshotDate: manifest.snapshotDate,
    instances: sortByKey(all.instances, instanceKey),
    serverless: sortByKey(all.serverless, serverlessKey),
    egress: sortByKey(all.egress, egressKey),
  };
  return { ...body, contentHash: contentHash(body) };
}

function readJson(file: string, name: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CatalogError([
      `${name}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CatalogError([`${name}: is not JSON (${(err as Error).message})`]);
  }
}

/** Reads and validates the catalog in `dir` (default: the snapshot shipped in the repo). */
export function loadCatalog(dir: string = CATALOG_DIR): PriceCatalog {
  const manifest = checkManifest(readJson(path.join(dir, MANIFEST_FILE), MANIFEST_FILE));
  const files = manifest.files.map((name) => ({ name, content: readJson(path.join(dir, name), name) }));
  return buildCatalog(manifest, files);
}

let shipped: PriceCatalog | undefined;

/** The shipped snapshot, loaded once per process. */
export function shippedCatalog(): PriceCatalog {
  shipped ??= loadCatalog();
  return shipped;
}
