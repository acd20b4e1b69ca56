/**
 * `ferry models` (every model with its versions and sizes) and `ferry models show <model>[:<version>]`
 * (one version's validation summary and dependency report), read from Ferry's metadata database.
 */
import { Pool } from 'pg';
import type { FerryConfig } from '../../lib/config';
import { FerryRepository, type ModelListing, type ModelVersionRow } from '../../lib/db/repository';
import type { DependencyReport } from '../../lib/onnx/validate';
import type { ModelSummary } from '../../lib/optimize/types';
import { FerryError } from '../sdk/errors';
import { formatBytes } from './progress';
import { textTable } from './textTable';

async function withRepository<T>(config: FerryConfig, fn: (repo: FerryRepository) => Promise<T>): Promise<T> {
  const pool = new Pool({ connectionString: config.postgres.url, max: 1, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {});
  try {
    return await fn(new FerryRepository(pool));
  } finally {
    await pool.end();
  }
}

export async function modelsListCommand(config: FerryConfig, json: boolean): Promise<void> {
  const models = await withRepository(config, (repo) => repo.listModels());
  if (json) {
    console.log(JSON.stringify(models, null, 2));
    return;
  }
  if (models.length === 0) {
    console.log('No models yet. Deploy one with: ferry deploy ./model.onnx');
    return;
  }
  for (const line of describeModels(models)) console.log(line);
}

export function describeModels(models: readonly ModelListing[]): string[] {
  const rows = [['MODEL', 'VERSIONS', 'LATEST', 'LATEST SIZE', 'ALL VERSIONS']];
  for (const m of models) {
    const total = m.versions.reduce((sum, v) => sum + v.sizeBytes, 0);
    rows.push([
      m.name,
      String(m.versions.length),
      m.versions[0]?.version ?? '-',
      formatBytes(m.versions[0]?.sizeBytes ?? 0),
      formatBytes(total),
    ]);
  }
  return textTable(rows);
}

/** `name` or `name:version`; without a version, the newest. */
export function parseModelRef(ref: string): { model: string; version?: string } {
  const at = ref.lastIndexOf(':');
  if (at <= 0) return { model: ref };
  return { model: ref.slice(0, at), version: ref.slice(at + 1) || undefined };
}

export async function modelsShowCommand(config: FerryConfig, ref: string, json: boolean): Promise<void> {
  const { model, version } = parseModelRef(ref);
  const row = await withRepository(config, async (repo) => {
    const chosen = version ?? (await repo.listModels()).find((m) => m.name === model)?.versions[0]?.version;
    return chosen === undefined ? undefined : repo.findModelVersion(model, chosen);
  });
  if (!row) throw new FerryError(`no model ${version ? `${model}:${version}` : model}; \`ferry models\` lists them`);
  if (json) {
    console.log(JSON.stringify(row, null, 2));
    return;
  }
  for (const line of describeModelVersion(row)) console.log(line);
}

export function describeModelVersion(row: ModelVersionRow): string[] {
  const a = row.analysis as Partial<ModelSummary>;
  const d = row.dependencies as DependencyReport | null | undefined;
  const shape = (t: { name: string; dataType: string; shape: Array<number | string | null> }) =>
    `${t.name} ${t.dataType} [${t.shape.map((x) => x ?? '?').join(', ')}]`;
  const lines = [
    `${row.model}:${row.version}`,
    `  sha256      ${row.sha256}`,
    `  size        ${formatBytes(row.sizeBytes)}`,
    `  validation  passed at upload: ${a.nodeCount ?? '?'} nodes, ${(a.parameterCount ?? 0).toLocaleString('en-US')} parameters, ${formatBytes(a.weightBytes ?? 0)} of weights`,
    `  inputs      ${(a.inputs ?? []).map(shape).join('; ')}`,
    `  outputs     ${(a.outputs ?? []).map(shape).join('; ')}`,
  ];
  if (!d) {
    lines.push('  dependencies  not recorded (uploaded before dependency analysis)');
    return lines;
  }
  const min = d.minimumRuntime.upperBound
    ? `newer than the last published release row, at most ${d.minimumRuntime.version}`
    : d.minimumRuntime.version;
  lines.push(
    `  IR version  ${d.irVersion}`,
    `  opsets      ${d.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`,
    `  onnxruntime minimum ${min} (bundled ${d.bundledRuntime})`,
    `  non-standard domains  ${d.nonStandardDomains.length ? d.nonStandardDomains.join(', ') : 'none'}`,
    `  dynamic dims  ${d.dynamicDims.length ? d.dynamicDims.join(', ') : 'none'}`,
    `  external files  ${d.externalFiles.length ? d.externalFiles.map((f) => `${f.location} (${formatBytes(f.sizeBytes)})`).join(', ') : 'none'}`,
  );
  for (const [domain, ops] of Object.entries(d.operators)) {
    const list = Object.entries(ops)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([op, n]) => (n > 1 ? `${op}×${n}` : op));
    lines.push(`  ops ${domain}: ${list.join(', ')}`);
  }
  return lines;
}
