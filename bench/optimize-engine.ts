/**
 * The optimization engine end to end on the demo's example MLP and on a real model shipped in an npm
 * package: every registered technique (and the engine's combinations) measured against the original in
 * one run per model, printed as the trade-off table with ratios against the original.
 *
 *   npx tsx bench/optimize-engine.ts [--real silero-vad|openwakeword-embedding|openwakeword-hey-jarvis]
 *                                    [--size-mb 10] [--threads N] [--measure-ms 600] [--rounds 2] [--json FILE]
 *
 * Not a test: it gates nothing. Numbers depend on the machine and on what else runs on it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { exampleModelSpec, generateMlpModel } from '../lib/onnx/generate';
import { runOptimizationEngine } from '../lib/optimize/engine';
import { formatTradeoffTable, tableFootnotes } from '../lib/optimize/table';
import { techniques } from '../lib/optimize/techniques';
import { ensureRealModel, REAL_MODELS } from '../test/fixtures/realModels';
import type { OptimizationTable } from '../workflows/types';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      real: { type: 'string', default: 'openwakeword-embedding' },
      'size-mb': { type: 'string', default: '10' },
      threads: { type: 'string' },
      'measure-ms': { type: 'string', default: '600' },
      rounds: { type: 'string', default: '2' },
      json: { type: 'string' },
    },
  });
  const real = REAL_MODELS.find((m) => m.id === values.real);
  if (!real) throw new Error(`--real must be one of ${REAL_MODELS.map((m) => m.id).join(', ')}`);
  const threads = values.threads ? Number(values.threads) : os.availableParallelism();
  const measureMs = Number(values['measure-ms']);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-optimize-'));
  console.log(
    `optimize-engine bench: ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `registered techniques: ${techniques.map((t) => t.id).join(', ')}; target threads ${threads}; ${measureMs} ms timed per candidate and batch size\n`,
  );

  const spec = exampleModelSpec(Number(values['size-mb']));
  const models: Array<{ label: string; bytes: Uint8Array; inputs?: (typeof real)['inputs'] }> = [
    {
      label: `example MLP ${[spec.inputDim, ...spec.hiddenDims, spec.outputDim].join('-')} (ferry example)`,
      bytes: generateMlpModel(spec),
    },
    {
      label: `${real.id}: ${real.npm.name}@${real.npm.version} ${real.file} — ${real.what}`,
      bytes: new Uint8Array(await readFile(await ensureRealModel(real, (l) => console.log(l)))),
      inputs: real.inputs,
    },
  ];
  const tables: Record<string, OptimizationTable> = {};
  try {
    for (const [i, m] of models.entries()) {
      console.log(`== ${m.label}`);
      let lastPhase = '';
      const { table } = await runOptimizationEngine({
        model: m.bytes,
        workDir: path.join(dir, String(i)),
        inputs: m.inputs,
        target: { threads },
        measure: { measureMs, rounds: Number(values.rounds) },
        onProgress: (p) => {
          const key = `${p.phase} ${p.candidate ?? ''}`;
          if (key !== lastPhase && (p.phase === 'measure' || p.phase === 'tune'))
            process.stderr.write(`   ${Math.round(100 * p.fraction)}% ${key}\n`);
          lastPhase = key;
        },
      });
      tables[m.label] = table;
      console.log(
        `   ${table.analysis.parameterCount.toLocaleString()} parameters, op mix ${JSON.stringify(table.analysis.opMix)}, ${table.elapsedMs} ms for the whole run`,
      );
      console.log(
        `   recommendations: ${table.recommendations.map((r) => `${r.rank}. ${r.technique}${r.applicable ? '' : ' (n/a)'}`).join('  ')}`,
      );
      for (const line of formatTradeoffTable(table, { indent: '   ' })) console.log(line);
      for (const line of tableFootnotes(table, '   ').slice(0, 1)) console.log(line);
      const best = table.candidates.find((c) => c.id === table.best)!;
      console.log(
        `   one-click choice: ${best.id}${best.sessionOptions ? ` ${JSON.stringify(best.sessionOptions)}` : ''}\n`,
      );
    }
    console.log(tableFootnotes(Object.values(tables)[0]!).slice(1).join('\n'));
    if (values.json) await writeFile(values.json, `${JSON.stringify(tables, null, 2)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
