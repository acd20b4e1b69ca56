/**
 * Runs measureChild.ts for one candidate and waits for its answer. One child per candidate, one at a
 * time: the peak RSS a child reports is its own (Node + onnxruntime + this model, as a serving replica
 * would hold), and candidates never compete for the cores while they are timed.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { MeasureRequest, MeasureResponse, OutputsWire } from './measureProtocol';

const repoRoot = path.resolve(__dirname, '../..');
const CHILD = path.join(__dirname, 'measureChild.ts');

export interface ChildMeasurement {
  response: MeasureResponse;
  outputs?: OutputsWire;
}

export async function measureInChild(req: MeasureRequest, files: { requestPath: string; responsePath: string }, timeoutMs: number): Promise<ChildMeasurement> {
  await writeFile(files.requestPath, JSON.stringify(req));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, files.requestPath, files.responsePath], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ code: null, signal: 'SIGKILL', timedOut: true });
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut: false });
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      stderr += err.message;
      resolve({ code: -1, signal: null, timedOut: false });
    });
  });
  let response: MeasureResponse | undefined;
  try {
    response = JSON.parse(await readFile(files.responsePath, 'utf8')) as MeasureResponse;
  } catch {
    const why = exit.timedOut
      ? `measurement did not finish within ${Math.round(timeoutMs / 1000)}s`
      : exit.signal
        ? `onnxruntime crashed (the measuring process died of ${exit.signal})`
        : `the measuring process exited with code ${exit.code}`;
    const tail = stderr.trim().split('\n').filter(Boolean).slice(-2).join(' | ');
    return { response: { ok: false, stage: 'load', error: tail ? `${why}: ${tail}` : why } };
  }
  if (!response.ok) return { response };
  const outputs = JSON.parse(await readFile(req.outputsPath, 'utf8')) as OutputsWire;
  return { response, outputs };
}
