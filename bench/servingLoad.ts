/**
 * Shared by the serving benchmarks: wrk as the load generator on 127.0.0.1 (installed from Debian's
 * package when missing), onnxruntime measured in-process as the baseline, and small statistics.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as ort from 'onnxruntime-node';

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** wrk on PATH, installing Debian's `wrk` package if it is missing. */
export function ensureWrk(): string {
  const find = () => {
    try {
      return execFileSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  let wrk = find();
  if (wrk) return wrk;
  log('wrk is not installed: installing Debian package "wrk" (apt-get) …');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args: string[]) =>
    execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    run(['apt-get', 'install', '-y', '-q', 'wrk']);
  } catch {
    run(['apt-get', 'update', '-q']);
    run(['apt-get', 'install', '-y', '-q', 'wrk']);
  }
  wrk = find();
  if (!wrk) throw new Error('could not install wrk (apt-get install wrk)');
  return wrk;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Non-2xx answers plus socket errors: must be 0 for the numbers to mean anything. */
  errors: number;
}

export interface LoadSpec {
  url: string;
  body: Buffer | string;
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
  /** wrk threads; default 1 (these machines have 2 cores, shared with the server under test). */
  threads?: number;
}

let scriptDir: string | undefined;

/** Closed-loop POST load with wrk: `connections` keep-alive connections, each sending as soon as answered. */
export async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const wrk = ensureWrk();
  scriptDir ??= await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-wrk-'));
  const bodyFile = path.join(scriptDir, `body-${process.pid}-${Date.now()}.bin`);
  await writeFile(bodyFile, spec.body);
  const script = path.join(scriptDir, `post-${process.pid}-${Date.now()}.lua`);
  const headers = { 'content-type': 'application/json', ...spec.headers };
  await writeFile(
    script,
    [
      `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))`,
      'wrk.body = f:read("*all")',
      'f:close()',
      'wrk.method = "POST"',
      ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
    ].join('\n'),
  );
  const threads = Math.min(spec.threads ?? 1, spec.connections);
  const args = [
    '-t',
    String(threads),
    '-c',
    String(spec.connections),
    '-d',
    `${spec.seconds}s`,
    '--latency',
    '-s',
    script,
    spec.url,
  ];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c) => (text += c));
    child.stderr.on('data', (c) => (text += c));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}:\n${text}`))));
  });
  return parseWrkOutput(out);
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 'ms') return v;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  throw new Error(`unknown wrk time unit ${unit}`);
}

export function parseWrkOutput(out: string): LoadResult {
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`no ${p}% latency in wrk output:\n${out}`);
    return toMs(m[1], m[2]);
  };
  const rps = /^Requests\/sec:\s+([0-9.]+)/m.exec(out);
  const total = /^\s+(\d+) requests in/m.exec(out);
  if (!rps || !total) throw new Error(`unexpected wrk output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = Number(non2xx?.[1] ?? 0) + (socket ? socket.slice(1).reduce((a, n) => a + Number(n), 0) : 0);
  return { requestsPerSecond: Number(rps[1]), p50Ms: pct('50'), p99Ms: pct('99'), requests: Number(total[1]), errors };
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function median(xs: readonly number[]): number {
  return quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

/** "median (min–max)" of repeated runs, with `digits` decimals. */
export function spread(xs: readonly number[], digits: number, unit = ''): string {
  const sorted = [...xs].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(digits);
  if (sorted.length === 1) return `${f(sorted[0])}${unit}`;
  return `${f(median(sorted))}${unit} (${f(sorted[0])}–${f(sorted[sorted.length - 1])})`;
}

/** Latency of sequential session.run calls in this process (the in-process baseline). */
export async function inProcessLatency(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  runs: number,
): Promise<{ p50Ms: number; p99Ms: number }> {
  for (let i = 0; i < Math.min(200, runs); i++) await session.run(feeds);
  const times = new Array<number>(runs);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    times[i] = performance.now() - t0;
  }
  times.sort((a, b) => a - b);
  return { p50Ms: quantile(times, 0.5), p99Ms: quantile(times, 0.99) };
}

/** Back-to-back session.run calls for `seconds`: what onnxruntime alone sustains on this process's cores. */
export async function inProcessThroughput(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  seconds: number,
): Promise<number> {
  for (let i = 0; i < 200; i++) await session.run(feeds);
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await session.run(feeds);
    n += 50;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Writes `<dir>/<name>/model.onnx` and a ferry-models.json listing it with the given extras. */
export async function writeServingDir(
  dir: string,
  name: string,
  bytes: Uint8Array,
  extras: Record<string, unknown> = {},
): Promise<string> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.join(dir, name), { recursive: true });
  await writeFile(path.join(dir, name, 'model.onnx'), bytes);
  await writeFile(
    path.join(dir, 'ferry-models.json'),
    JSON.stringify({ models: [{ name, version: '1', path: `${name}/model.onnx`, ...extras }] }, null, 2),
  );
  return dir;
}

export function machineLine(): string {
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${load} (shared: other engineers' tests run here too)`;
}
