/**
 * Offline graph optimization: let onnxruntime optimize the graph once and save the result with
 * `optimizedModelFilePath`, so every replica starts from the already-optimized model.
 */
import * as ort from 'onnxruntime-node';

/**
 * 'basic' folds constants and removes redundant nodes; 'extended' also fuses operators into
 * onnxruntime's CPU contrib ops, which any onnxruntime CPU build of the same version runs (portable);
 * 'all' adds layout transforms tuned to this machine's instruction set, so it is kept for images that
 * run where they were optimized.
 */
export type PortableLevel = 'basic' | 'extended';
export type OfflineLevel = PortableLevel | 'all';

export async function optimizeGraphOffline(
  inputPath: string,
  outputPath: string,
  level: OfflineLevel = 'extended',
): Promise<void> {
  const session = await ort.InferenceSession.create(inputPath, {
    graphOptimizationLevel: level,
    optimizedModelFilePath: outputPath,
    logSeverityLevel: 3,
  });
  await session.release();
}
