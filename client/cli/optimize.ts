/**
 * `ferry optimize model.onnx --out DIR`: the optimize stage's engine without the workflow. Writes every
 * measured candidate's model and a report into DIR and prints the trade-off table (`--json` for machines).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { EngineProgress, EngineResult } from '../../lib/optimize/engine';
import type { FixedInputJson } from '../../lib/optimize/sampleInputs';
import { formatTradeoffTable, tableFootnotes } from '../../lib/optimize/table';
import type { CalibrationSample } from '../../lib/optimize/technique';
import type { AccuracyBudget, OptimizationTable, TargetSpec } from '../../workflows/types';
import { FerryError, optimizeModelFile } from '../sdk';
import { bar } from './progress';

export interface OptimizeCommandOptions {
  out: string;
  techniques?: string[];
  calibrationFile?: string;
  inputsFile?: string;
  budget?: Partial<AccuracyBudget>;
  target?: Partial<TargetSpec>;
  measureMs?: number;
  json: boolean;
}

/** `[{ "input": { "dims": [1, 16], "data": [...] } }, ...]` or `{ "samples": [...] }`. */
export async function readCalibration(file: string): Promise<CalibrationSample[]> {
  const parsed = await readJson(file, 'calibration file');
  const samples = Array.isArray(parsed) ? parsed : (parsed as { samples?: unknown }).samples;
  if (!Array.isArray(samples) || samples.length === 0)
    throw new FerryError(`calibration file ${file}: expected a non-empty array of samples (or { "samples": [...] })`);
  return samples.map((sample, i) => {
    const out: CalibrationSample = {};
    for (const [name, t] of Object.entries(sample as Record<string, { dims?: number[]; data?: number[] }>)) {
      if (!Array.isArray(t?.dims) || !Array.isArray(t?.data))
        throw new FerryError(`calibration file ${file}: sample ${i} input "${name}" needs "dims" and "data" arrays`);
      const n = t.dims.reduce((a, b) => a * b, 1);
      if (n !== t.data.length)
        throw new FerryError(
          `calibration file ${file}: sample ${i} input "${name}" has ${t.data.length} values for dims [${t.dims.join(', ')}]`,
        );
      out[name] = { dims: t.dims, data: Float32Array.from(t.data) };
    }
    return out;
  });
}

/** `{ "fixed": { "sr": { "type": "int64", "dims": [], "data": [16000] } }, "dims": { "sequence": 512 } }`. */
export async function readInputs(
  file: string,
): Promise<{ fixed?: Record<string, FixedInputJson>; dims?: Record<string, number> }> {
  const parsed = (await readJson(file, 'inputs file')) as {
    fixed?: Record<string, FixedInputJson>;
    dims?: Record<string, number>;
  };
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new FerryError(`inputs file ${file}: expected { "fixed": {...}, "dims": {...} }`);
  return { fixed: parsed.fixed, dims: parsed.dims };
}

async function readJson(file: string, what: string): Promise<unknown> {
  const raw = await readFile(file, 'utf8').catch(() => {
    throw new FerryError(`${what} ${file} cannot be read`);
  });
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new FerryError(`${what} ${file} is not JSON: ${(err as Error).message}`);
  }
}

export async function optimizeCommand(file: string, opts: OptimizeCommandOptions): Promise<void> {
  const calibration = opts.calibrationFile ? await readCalibration(opts.calibrationFile) : undefined;
  const inputs = opts.inputsFile ? await readInputs(opts.inputsFile) : undefined;
  await mkdir(opts.out, { recursive: true });
  const tty = Boolean(process.stdout.isTTY) && !opts.json;
  let lastLine = '';
  const onProgress = (p: EngineProgress) => {
    if (opts.json) return;
    const label = `${p.phase}${p.candidate ? ` ${p.candidate}` : ''}${p.detail && p.phase !== 'measure' ? `: ${p.detail}` : ''}`;
    if (tty) {
      process.stdout.write(`\r\x1b[2K  ${bar(100 * p.fraction)} ${label.slice(0, 80)}`);
    } else {
      const line = `${p.phase} ${p.candidate ?? ''}`.trim();
      if (line !== lastLine && p.phase !== 'transform') console.log(`  ${Math.round(100 * p.fraction)}% ${label}`);
      lastLine = line;
    }
  };

  let result: EngineResult;
  try {
    result = await optimizeModelFile(file, {
      workDir: opts.out,
      techniques: opts.techniques,
      calibration,
      inputs,
      budget: opts.budget,
      target: opts.target,
      measure: opts.measureMs ? { measureMs: opts.measureMs } : undefined,
      onProgress,
    });
  } catch (err) {
    if (tty) process.stdout.write('\r\x1b[2K');
    throw err instanceof FerryError ? err : new FerryError((err as Error).message);
  }
  if (tty) process.stdout.write('\r\x1b[2K');

  const { table } = result;
  const files: Record<string, string> = {};
  for (const c of result.candidates) if (c.modelPath) files[c.id] = c.modelPath;
  const reportPath = path.join(opts.out, 'report.json');
  const textPath = path.join(opts.out, 'report.txt');
  const text = [
    `${path.basename(file)}: ${table.analysis.parameterCount.toLocaleString()} parameters, ${table.analysis.macsEstimate.toLocaleString()} MACs, op mix ${Object.entries(
      table.analysis.opMix,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}${table.analysis.dynamicDims.length ? `, dynamic dims ${table.analysis.dynamicDims.join(', ')}` : ''}`,
    '',
    'Recommendations:',
    ...table.recommendations.map(
      (r) =>
        `  ${r.rank}. ${r.technique.padEnd(16)} ${r.applicable ? r.expectedEffect : r.reasons[0]}${r.applicable && r.reasons.length ? ` [${r.reasons.join('; ')}]` : ''}`,
    ),
    '',
    'Trade-off table (ratios against the original, measured in this run):',
    ...formatTradeoffTable(table, { indent: '  ' }),
    '',
    ...tableFootnotes(table, '  '),
    '',
    ...bestLines(table),
  ];
  await writeFile(reportPath, `${JSON.stringify({ model: path.resolve(file), files, table }, null, 2)}\n`);
  await writeFile(textPath, `${text.join('\n')}\n`);
  if (opts.json) {
    console.log(JSON.stringify({ model: path.resolve(file), files, report: reportPath, table }, null, 2));
    return;
  }
  console.log(text.join('\n'));
  console.log(
    `\nWrote ${Object.keys(files).length} candidate model(s) and report.json / report.txt to ${opts.out} (in ${(table.elapsedMs / 1000).toFixed(1)}s).`,
  );
}

/** The chosen candidate and how it would be served (its session options and the batching decision). */
function bestLines(table: OptimizationTable): string[] {
  const best = table.candidates.find((c) => c.id === table.best);
  const lines = [
    `Best within the budget: ${table.best}${best?.sessionOptions ? ` with session options ${JSON.stringify(best.sessionOptions)}` : ''}`,
  ];
  const batchingNote = best?.notes.find((n) => n.startsWith('dynamic batching'));
  if (batchingNote) lines.push(`Serving: ${batchingNote}`);
  return lines;
}
