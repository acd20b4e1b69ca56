/**
 * The optimization engine in a process of its own (started by engineProcess.ts): transforms written in
 * TypeScript and onnxruntime's session runs are synchronous, so running them in the Temporal worker
 * would stall its event loop — no heartbeats, no workflow tasks — for as long as a transform takes.
 *
 *   node --import tsx lib/optimize/engineChild.ts <request.json> <result.json>
 * Progress goes to the parent over the IPC channel; the process ends when the parent goes away.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { runOptimizationEngine } from './engine';
import { type EngineRequestWire, type EngineResultWire, engineOptionsFromWire } from './engineProcess';
import { OptimizationNotPossibleError } from './errors';

process.on('disconnect', () => process.exit(3));

async function main(requestPath: string, resultPath: string): Promise<void> {
  const req = JSON.parse(readFileSync(requestPath, 'utf8')) as EngineRequestWire;
  const opts = engineOptionsFromWire(req, new Uint8Array(readFileSync(req.modelPath)));
  try {
    const result = await runOptimizationEngine({
      ...opts,
      onProgress: (p) => process.send?.({ type: 'progress', progress: p }),
    });
    writeFileSync(resultPath, JSON.stringify({ ok: true, result } satisfies EngineResultWire));
  } catch (err) {
    // The code travels with the message, so the parent throws the same error class.
    const code = err instanceof OptimizationNotPossibleError ? err.code : undefined;
    writeFileSync(
      resultPath,
      JSON.stringify({ ok: false, error: (err as Error).message, code } satisfies EngineResultWire),
    );
  }
}

const [requestPath, resultPath] = process.argv.slice(2);
if (!requestPath || !resultPath) {
  console.error('usage: engineChild.ts <request.json> <result.json>');
  process.exit(2);
}
main(requestPath, resultPath).then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
