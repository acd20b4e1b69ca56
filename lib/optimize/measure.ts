/**
 * Runs measureChild.ts for one candidate and waits for its answer. One child per candidate, one at a
 * time: the peak RSS a child reports is its own (Node + onnxruntime + this model, as a serving replica
 * would hold), and candidates never compete for the cores while they are timed.
 *
 * The child runs as an esbuild bundle under plain node — like the image's inference server — not
 * through tsx, whose TypeScript compiler would set the process's memory high-water mark before the
 * model is even loaded.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { ferryChildEnv } from '../config';
import { stderrTail, waitForChild } from '../process/childRun';
import type { MeasureRequest, MeasureResponse, OutputsWire } from './measureProtocol';

const repoRoot = path.resolve(__dirname, '../..');
const CHILD_ENTRY = path.join(__dirname, 'measureChild.ts');

let bundled: Promise<string> | undefined;

/**
 * The child as one CommonJS file (onnxruntime-node stays external). Named by the hash of the bundle itself,
 * so a change in any file it pulls in (agreement.ts, rowIndependence.ts, the server's batching rules) gives
 * a new file; building it in memory takes a few tens of milliseconds, once per process.
 */
export function measureChildBundle(): Promise<string> {
  bundled ??= (async () => {
    const result = await build({
      entryPoints: [CHILD_ENTRY],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      external: ['onnxruntime-node'],
      write: false,
      logLevel: 'silent',
    });
    const code = result.outputFiles[0]!.contents;
    const dir = path.join(os.tmpdir(), 'ferry-measure-child');
    const out = path.join(dir, `measureChild-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.cjs`);
    if (existsSync(out)) return out;
    await mkdir(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, out);
    return out;
  })();
  bundled.catch(() => {
    bundled = undefined;
  });
  return bundled;
}

export interface ChildMeasurement {
  response: MeasureResponse;
  outputs?: OutputsWire;
}

export async function measureInChild(
  req: MeasureRequest,
  files: { requestPath: string; responsePath: string },
  timeoutMs: number,
): Promise<ChildMeasurement> {
  await writeFile(files.requestPath, JSON.stringify(req));
  const script = await measureChildBundle();
  const child = spawn(process.execPath, [script, files.requestPath, files.responsePath], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // The bundle lives outside the repo: find onnxruntime-node in the repo's node_modules.
    env: ferryChildEnv({ NODE_OPTIONS: '', NODE_PATH: path.join(repoRoot, 'node_modules') }),
  });
  const exit = await waitForChild(child, timeoutMs);
  let response: MeasureResponse | undefined;
  try {
    response = JSON.parse(await readFile(files.responsePath, 'utf8')) as MeasureResponse;
  } catch {
    const why = exit.timedOut
      ? `measurement did not finish within ${Math.round(timeoutMs / 1000)}s`
      : exit.signal
        ? `onnxruntime crashed (the measuring process died of ${exit.signal})`
        : `the measuring process exited with code ${exit.code}`;
    const tail = stderrTail(exit.stderr, 2);
    return { response: { ok: false, stage: 'load', error: tail ? `${why}: ${tail}` : why } };
  }
  if (!response.ok) return { response };
  const outputs = JSON.parse(await readFile(req.outputsPath, 'utf8')) as OutputsWire;
  return { response, outputs };
}
