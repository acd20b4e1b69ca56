/** `ferry validate`: the checks alone, as the command line runs them; exit 0 on a good model, 1 with reasons. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { describeReport, validateOne } from '../../client/cli/validate';
import { corruptModelBytes, generateMlpModel } from '../../lib/onnx/generate';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-validate-cli-'));
  await writeFile(path.join(dir, 'good.onnx'), generateMlpModel({ inputDim: 4, hiddenDims: [3], outputDim: 2 }));
  await writeFile(path.join(dir, 'cyclic.onnx'), corruptModelBytes('cycle'));
});
after(() => rm(dir, { recursive: true }));

async function ferry(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(ferryBin, args, { timeout: 60_000 });
    return { code: 0, out: stdout };
  } catch (e) {
    const x = e as { code?: number; stdout?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '' };
  }
}

test('a folder: each model reported, exit 1 because one is invalid; --json for tools; one good file exits 0', async () => {
  const both = await ferry('validate', dir, '--json');
  assert.equal(both.code, 1);
  const reports = JSON.parse(both.out) as Array<{ file: string; valid: boolean; code?: string }>;
  assert.deepEqual(
    reports.map((r) => [path.basename(r.file), r.valid, r.code]),
    [
      ['cyclic.onnx', false, 'cycle'],
      ['good.onnx', true, undefined],
    ],
  );
  const good = await ferry('validate', path.join(dir, 'good.onnx'));
  assert.equal(good.code, 0);
  assert.match(good.out, /good\.onnx: valid/);
});

test('the text report names the reason, or the model’s I/O and dynamic dims', () => {
  const bad = describeReport(validateOne(path.join(dir, 'cyclic.onnx')));
  assert.match(bad, /INVALID \(cycle\)/);
  assert.match(bad, /'layer0_matmul'/);
  const good = describeReport(validateOne(path.join(dir, 'good.onnx')));
  assert.match(good, /inputs: input FP32 \[batch, 4\]/);
  assert.match(good, /dynamic dims: batch/);
});
