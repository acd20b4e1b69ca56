/**
 * `ferry validate model.onnx|DIR [--json]`: the upload stage's checks alone, on this machine, uploading
 * nothing. A folder's .onnx files are each validated, with the folder as the place their external data
 * must be in. Exit 0 when every model is valid, 1 otherwise (each reason printed).
 */
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { ModelAnalysis } from '../../lib/onnx/analyze';
import {
  type DependencyReport,
  type ExternalFile,
  type ModelValidationCode,
  ModelValidationError,
  validateModelFile,
} from '../../lib/onnx/validate';
import { FerryError } from '../sdk/errors';
import { formatBytes } from './progress';

export interface ValidateFlags {
  json?: boolean;
  maxBytes?: number;
}

export type ValidationReport =
  | {
      file: string;
      valid: true;
      sizeBytes: number;
      analysis: ModelAnalysis;
      externalFiles: ExternalFile[];
      dependencies: DependencyReport;
    }
  | { file: string; valid: false; code: ModelValidationCode; message: string };

/** Validates every model `target` names; prints the reports; returns the exit status. */
export async function validateCommand(target: string, flags: ValidateFlags): Promise<number> {
  const files = await modelFiles(target);
  const reports = files.map((file) => validateOne(file, flags.maxBytes));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
  } else {
    for (const r of reports) process.stdout.write(`${describeReport(r)}\n`);
  }
  return reports.every((r) => r.valid) ? 0 : 1;
}

export function validateOne(file: string, maxBytes?: number): ValidationReport {
  try {
    const v = validateModelFile(file, { maxBytes });
    const { sizeBytes, analysis, externalFiles, dependencies } = v;
    return { file, valid: true, sizeBytes, analysis, externalFiles, dependencies };
  } catch (err) {
    if (err instanceof ModelValidationError) return { file, valid: false, code: err.code, message: err.message };
    throw err;
  }
}

async function modelFiles(target: string): Promise<string[]> {
  const info = await stat(target).catch(() => {
    throw new FerryError(`${target}: no such file or folder`);
  });
  if (!info.isDirectory()) return [target];
  const names = (await readdir(target)).filter((n) => n.toLowerCase().endsWith('.onnx')).sort();
  if (names.length === 0) throw new FerryError(`${target} holds no .onnx file`);
  return names.map((n) => path.join(target, n));
}

export function describeReport(r: ValidationReport): string {
  if (!r.valid) return `${r.file}: INVALID (${r.code})\n  ${r.message}`;
  const a = r.analysis;
  const lines = [
    `${r.file}: valid`,
    `  IR ${a.irVersion}; opsets ${a.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`,
    `  ${a.nodeCount} nodes, ${a.parameterCount.toLocaleString('en-US')} parameters, ${formatBytes(a.weightBytes)} of weights (file ${formatBytes(r.sizeBytes)})`,
    `  inputs: ${a.inputs.map((t) => `${t.name} ${t.dataType} [${t.shape.map((d) => d ?? '?').join(', ')}]`).join('; ')}`,
    `  outputs: ${a.outputs.map((t) => `${t.name} ${t.dataType} [${t.shape.map((d) => d ?? '?').join(', ')}]`).join('; ')}`,
  ];
  if (a.dynamicDims.length > 0) lines.push(`  dynamic dims: ${a.dynamicDims.join(', ')}`);
  const min = r.dependencies.minimumRuntime;
  lines.push(`  onnxruntime: ${min.upperBound ? `at most ${min.version} needed` : `${min.version} or newer`}`);
  if (r.externalFiles.length > 0) {
    lines.push(
      `  external files: ${r.externalFiles.map((f) => `${f.location} (${formatBytes(f.sizeBytes)})`).join(', ')}`,
    );
  }
  return lines.join('\n');
}
