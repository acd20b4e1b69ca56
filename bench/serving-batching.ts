/**
 * Dynamic batching: throughput of the inference server under 32 concurrent clients on a MatMul-heavy
 * model, batching off (the baseline, same run) vs on, each sending batch-1 JSON requests.
 *
 *   npx tsx bench/serving-batching.ts [--runs 3] [--seconds 5] [--clients 32] [--input-dim 1024] [--hidden 2048,2048] [--output-dim 256]
 *
 * Load: wrk on 127.0.0.1, `--clients` keep-alive connections in a closed loop. Same model, same input,
 * same session options (one intra-op thread) in every configuration; rounds interleave the
 * configurations so the shared machine's noise hits each alike. Target (issue 4): batching on ≥ 2x off.
 * The server's own metrics say how full the batches were (rows per session.run).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { generateMlpModel } from '../lib/onnx/generate';
import { startInferenceServer } from '../runtime/server';
import { ensureWrk, type LoadResult, log, machineLine, median, runWrk, spread, writeServingDir } from './servingLoad';

interface Config {
  label: string;
  batching?: { maxBatchSize: number; maxQueueDelayMs: number };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      clients: { type: 'string', default: '32' },
      'input-dim': { type: 'string', default: '1024' },
      hidden: { type: 'string', default: '2048,2048' },
      'output-dim': { type: 'string', default: '256' },
    },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  const inputDim = Number(values['input-dim']);
  const hiddenDims = values.hidden!.split(',').map(Number);
  const outputDim = Number(values['output-dim']);
  ensureWrk();

  const bytes = generateMlpModel({ inputDim, hiddenDims, outputDim, seed: 11 });
  const sessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const configs: Config[] = [
    { label: 'batching off (baseline)' },
    { label: 'batching on, maxBatchSize 32, delay 0 (default)', batching: { maxBatchSize: 32, maxQueueDelayMs: 0 } },
    { label: 'batching on, maxBatchSize 32, delay 2 ms', batching: { maxBatchSize: 32, maxQueueDelayMs: 2 } },
  ];
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-batching-'));
  const dirs = await Promise.all(
    configs.map((c, i) =>
      writeServingDir(path.join(tmp, String(i)), 'm', bytes, {
        sessionOptions,
        ...(c.batching ? { batching: c.batching } : {}),
      }),
    ),
  );
  const input = Array.from({ length: inputDim }, (_, i) => Math.cos(i * 0.1));
  const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, inputDim], datatype: 'FP32', data: input }] });

  const results: Array<Array<{ load: LoadResult; rowsPerRun: number }>> = configs.map(() => []);
  try {
    for (let r = 0; r < runs; r++) {
      for (const [i, c] of configs.entries()) {
        log(`round ${r + 1}/${runs}: ${c.label}`);
        const server = await startInferenceServer({ modelDir: dirs[i], port: 0 });
        try {
          const url = `${server.url}/v2/models/m/infer`;
          await runWrk({ url, body, connections: clients, seconds: 1 }); // warm-up
          const before = await batchStats(server.url);
          const load = await runWrk({ url, body, connections: clients, seconds });
          const after = await batchStats(server.url);
          results[i].push({ load, rowsPerRun: (after.rows - before.rows) / Math.max(1, after.runs - before.runs) });
        } finally {
          await server.close();
        }
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  const params =
    hiddenDims.reduce((a, h, i) => a + h * ([inputDim, ...hiddenDims][i] + 1), 0) +
    outputDim * (hiddenDims.at(-1)! + 1);
  console.log(
    `dynamic batching — MLP ${inputDim}→${hiddenDims.join('→')}→${outputDim} (${(params / 1e6).toFixed(1)} M parameters, ${(bytes.length / 1e6).toFixed(1)} MB), batch-1 JSON requests, intraOpNumThreads 1`,
  );
  console.log(machineLine());
  console.log(
    `${runs} round(s) × ${seconds}s, ${clients} concurrent clients (wrk); median (min–max) over rounds; load errors: ${results.flat().reduce((a, x) => a + x.load.errors, 0)}`,
  );
  console.log('');
  console.log(`  ${'configuration'.padEnd(50)} ${'req/s'.padEnd(22)} ${'p50'.padEnd(24)} ${'p99'.padEnd(24)} rows/run`);
  for (const [i, c] of configs.entries()) {
    const xs = results[i];
    console.log(
      `  ${c.label.padEnd(50)} ${spread(
        xs.map((x) => x.load.requestsPerSecond),
        0,
      ).padEnd(22)} ${spread(
        xs.map((x) => x.load.p50Ms),
        2,
        ' ms',
      ).padEnd(24)} ${spread(
        xs.map((x) => x.load.p99Ms),
        2,
        ' ms',
      ).padEnd(24)} ${spread(
        xs.map((x) => x.rowsPerRun),
        1,
      )}`,
    );
  }
  const base = results[0];
  for (const i of [1, 2]) {
    const ratios = results[i].map((x, r) => x.load.requestsPerSecond / base[r].load.requestsPerSecond);
    console.log(
      `  throughput ${configs[i].label} / off: ${spread(ratios, 2, 'x')}${i === 1 ? `   (target ≥ 2x: ${median(ratios) >= 2 ? 'met' : 'NOT met'})` : ''}`,
    );
  }
}

/** Rows and session.run calls so far, from the server's own Prometheus metrics. */
async function batchStats(url: string): Promise<{ rows: number; runs: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) =>
    Number(new RegExp(`^${name}\\{model="m",version="1"\\} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? 0);
  return { rows: read('ferry_inference_batch_size_sum'), runs: read('ferry_inference_batch_size_count') };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
