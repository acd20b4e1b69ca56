/** The optimize stage without the workflow or any Ferry service (what `ferry optimize` runs). */
import { stat } from 'node:fs/promises';
import type { EngineProgress, EngineResult } from '../../lib/optimize/engine';
import type { EngineChildOptions } from '../../lib/optimize/engineProcess';
import { FerryError } from './errors';

/**
 * Analysis, recommendations and every candidate measured against the original, with candidate models
 * written to `opts.workDir`. The engine runs in a child process, so this process stays responsive
 * (progress bars); it is loaded on first use, so the rest of the SDK does not load onnxruntime.
 */
export async function optimizeModelFile(
  filePath: string,
  opts: EngineChildOptions & { onProgress?: (p: EngineProgress) => void },
): Promise<EngineResult> {
  const info = await stat(filePath).catch(() => undefined);
  if (!info?.isFile()) throw new FerryError(`model file ${filePath} cannot be read`);
  const { runOptimizationEngineInChild } = await import('../../lib/optimize/engineProcess');
  const { onProgress, ...rest } = opts;
  return runOptimizationEngineInChild(filePath, rest, onProgress);
}
