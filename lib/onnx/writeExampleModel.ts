/**
 * Writes the demo's example model: `npx tsx lib/onnx/writeExampleModel.ts out.onnx [--size-mb 10]`.
 * Written to a temporary name first, so an interrupted run never leaves a half-written model behind.
 */
import { rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { analyzeModel } from './analyze';
import { exampleModelSpec, generateMlpModel } from './generate';
import { decodeModel } from './model';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'size-mb': { type: 'string', default: '10' } },
  });
  const out = positionals[0];
  const sizeMb = Number(values['size-mb']);
  if (!out || positionals.length > 1 || !(sizeMb > 0)) {
    console.error('usage: npx tsx lib/onnx/writeExampleModel.ts out.onnx [--size-mb 10]');
    process.exit(2);
  }
  const spec = exampleModelSpec(sizeMb);
  const bytes = generateMlpModel(spec);
  await writeFile(`${out}.tmp`, bytes);
  await rename(`${out}.tmp`, out);
  const a = analyzeModel(decodeModel(bytes));
  console.log(
    `${out}: ${(bytes.length / 1024 / 1024).toFixed(1)} MiB, MLP ${[spec.inputDim, ...spec.hiddenDims, spec.outputDim].join('-')}, ` +
      `${a.parameterCount} parameters, ${a.macsEstimate} MACs per item`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
