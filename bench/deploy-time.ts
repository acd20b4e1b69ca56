/**
 * Time from `ferry deploy` (one-click) to a live endpoint for a ~10 MB model, split by stage, against a
 * baseline measured in the same run: starting the inference server by hand on the same file and
 * answering a first request (what serving it costs without any pipeline).
 *   bash infra/stack.sh start && npx tsx bench/deploy-time.ts [--runs 3] [--size-mb 10]
 */
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import { startInferenceServer } from '../runtime/server';
import { startHarness } from '../test/helpers/ferryHarness';
import { PIPELINE_STAGES } from '../workflows/types';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function baselineServeByHand(file: string): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-serve-'));
  await mkdir(path.join(dir, 'm'));
  await symlink(file, path.join(dir, 'm', 'model.onnx'));
  await writeFile(
    path.join(dir, 'ferry-models.json'),
    JSON.stringify({ models: [{ name: 'm', version: '1', path: 'm/model.onnx' }] }),
  );
  const t0 = performance.now();
  const server = await startInferenceServer({ modelDir: dir, port: 0 });
  const res = await fetch(`${server.url}/v2/models/m/ready`);
  const ms = performance.now() - t0;
  await server.close();
  if (!res.ok) throw new Error('baseline server not ready');
  return ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, 'size-mb': { type: 'string', default: '10' } },
  });
  const runs = Number(values.runs);
  const h = await startHarness('bench');
  await h.startWorker();
  try {
    const totals: number[] = [];
    const perStage: Record<string, number[]> = Object.fromEntries(PIPELINE_STAGES.map((s) => [s, []]));
    const baselines: number[] = [];
    let sizeBytes = 0;
    for (let i = 0; i < runs; i++) {
      const name = `bench-${h.runId}-${i}`;
      const bytes = generateMlpModel({ ...exampleModelSpec(Number(values['size-mb'])), seed: 100 + i });
      sizeBytes = bytes.length;
      const file = path.join(h.tmpDir, `${name}.onnx`);
      await writeFile(file, bytes);
      baselines.push(await baselineServeByHand(file));
      const t0 = performance.now();
      const started = await h.ferry.deploy(file, { model: name });
      const status = await h.ferry.waitForResult(started.deploymentId);
      totals.push(performance.now() - t0);
      for (const s of status.stages) perStage[s.stage].push(Date.parse(s.finishedAt!) - Date.parse(s.startedAt!));
      await h.ferry.undeploy(started.deploymentId);
    }
    console.log(`model: ${(sizeBytes / 1e6).toFixed(1)} MB MLP, ${runs} run(s), one-click, medians`);
    console.log(
      `  ferry deploy → live endpoint: ${(median(totals) / 1000).toFixed(2)} s   (runs: ${totals.map((t) => (t / 1000).toFixed(2)).join(', ')} s)`,
    );
    for (const s of PIPELINE_STAGES) console.log(`    ${s.padEnd(10)} ${(median(perStage[s]) / 1000).toFixed(2)} s`);
    console.log(
      `  baseline, server started by hand on the same file until ready: ${(median(baselines) / 1000).toFixed(3)} s`,
    );
    console.log(`  ratio (pipeline / by hand): ${(median(totals) / median(baselines)).toFixed(1)}x`);
  } finally {
    await h.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
