/**
 * INT8 static quantization (QDQ, calibrated) measured side by side in one run: the original float32 model,
 * Ferry's int8-static, and the peer, onnxruntime's own Python `quantize_static` (QDQ format, per-channel int8
 * weights, uint8 activations), both calibrated on the same samples (written to .npy files and fed to the peer
 * through a CalibrationDataReader), both timed in this same Node process the same way.
 *
 *   npx tsx bench/quantize-static.ts [--rounds 15] [--methods minmax,percentile,entropy] [--only <text>] [--no-peer] [--json]
 *
 * --only keeps the workloads whose name contains the text (e.g. --only CNN).
 *
 * Models: an MNIST-shaped MLP classifier (784-1024-1024-10, MatMul + Add + Relu), a small image CNN
 * (3x32x32 → Conv 32 → Conv 64/2 → Conv 128/2 → Gemm 10, Relus), the same CNN as older exporters write it
 * (opset 9, weights in Constant nodes, MatMul + Add head), and a transformer encoder block (d=768, 12 heads,
 * FFN 3072) at sequence length 32.
 * Calibration: 32 batch-1 samples, uniform in [-1, 1) (seed 7); accuracy: 32 other samples (seed 1000+).
 * Latency: p50 at batch 1, one thread (intra- and inter-op), variants interleaved in many short rounds so that
 * load from other processes hits them alike; the spread of the per-round p50s is printed next to it, and ratios
 * are medians of per-round ratios (variants measured back to back).
 * The peer runs in a virtualenv under ~/.cache/ferry/bench-venv (or $FERRY_BENCH_VENV), created
 * (pip install onnxruntime onnx) when missing. This is a benchmark: it prints figures, it never gates tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../lib/onnx/analyze';
import { type CnnSpec, generateCnnModel } from '../lib/onnx/cnn';
import { generateEncoderBlockModel } from '../lib/onnx/encoderBlock';
import { generateMlpModel, seededUniform } from '../lib/onnx/generate';
import { decodeModel } from '../lib/onnx/model';
import type { CalibrationSample } from '../lib/optimize/technique';
import type { CalibrationMethod } from '../lib/optimize/techniques/calibration';
import { int8Static } from '../lib/optimize/techniques/int8Static';
import { agreementOf, type OrtOutputs } from '../lib/optimize/techniques/modelAgreement';
import { ensurePeerPython } from './peers/peerVenv';

const PEER_SCRIPT = path.join(__dirname, 'peers', 'quantize_static_peer.py');
const CALIBRATION_SAMPLES = 32;
const ACCURACY_SAMPLES = 32;

ort.env.logLevel = 'error';

interface Workload {
  name: string;
  model: Uint8Array;
  input: string;
  /** Batch-1 dims of the single input. */
  dims: number[];
}

interface Variant {
  label: string;
  bytes: Uint8Array;
  transformSeconds?: number;
}

interface Row {
  label: string;
  sizeBytes: number;
  p50Ms: number;
  roundP50s: number[];
  cosine: number;
  maxAbsError: number;
  top1?: number;
  transformSeconds?: number;
}

function uniform(dims: number[], rand: () => number): Float32Array {
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
}

/** A float32 array as a .npy file (format 1.0, little-endian, C order). */
function npy(data: Float32Array, dims: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  // Magic (6) + version (2) + header length (2) + header + '\n', padded to a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = `${header.padEnd(total - 10 - 1, ' ')}\n`;
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    head,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

async function runPeer(
  python: string,
  dir: string,
  key: string,
  model: Uint8Array,
  manifest: string,
  method: CalibrationMethod,
): Promise<Variant & { version: string }> {
  const src = path.join(dir, `${key}.onnx`);
  const dst = path.join(dir, `${key}.${method}.peer.onnx`);
  await writeFile(src, model);
  const out = execFileSync(python, [PEER_SCRIPT, src, dst, manifest, method, '99.99'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .toString()
    .trim()
    .split('\n')
    .pop()!;
  const info = JSON.parse(out) as { onnxruntime: string; seconds: number };
  return {
    label: `peer quantize_static ${method} (ORT ${info.onnxruntime})`,
    bytes: new Uint8Array(await readFile(dst)),
    transformSeconds: info.seconds,
    version: info.onnxruntime,
  };
}

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function measure(w: Workload, variants: Variant[], rounds: number): Promise<Row[]> {
  const sessions = await Promise.all(variants.map((v) => session(v.bytes)));
  try {
    const accRand = seededUniform(1000);
    const accFeeds = Array.from({ length: ACCURACY_SAMPLES }, () => ({
      [w.input]: new ort.Tensor('float32', uniform(w.dims, accRand), w.dims),
    }));
    const outputs: OrtOutputs[][] = [];
    for (const s of sessions) {
      const outs: OrtOutputs[] = [];
      for (const f of accFeeds) outs.push((await s.run(f)) as OrtOutputs);
      outputs.push(outs);
    }
    const accuracy = outputs.map((o) => agreementOf(outputs[0], o));
    const feeds = { [w.input]: new ort.Tensor('float32', uniform(w.dims, seededUniform(1)), w.dims) };
    for (const s of sessions) for (let i = 0; i < 5; i++) await s.run(feeds);
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await sessions[0].run(feeds);
    const perRun = (performance.now() - t0) / 5;
    const iterations = Math.max(10, Math.min(200, Math.round(100 / perRun)));
    const samples: number[][] = variants.map(() => []);
    const roundP50s: number[][] = variants.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let v = 0; v < variants.length; v++) {
        for (let i = 0; i < 3; i++) await sessions[v].run(feeds);
        const round: number[] = [];
        for (let i = 0; i < iterations; i++) {
          const start = process.hrtime.bigint();
          await sessions[v].run(feeds);
          round.push(Number(process.hrtime.bigint() - start) / 1e6);
        }
        samples[v].push(...round);
        roundP50s[v].push(median(round));
      }
    }
    return variants.map((v, i) => ({
      label: v.label,
      sizeBytes: v.bytes.length,
      p50Ms: median(samples[i]),
      roundP50s: roundP50s[i],
      cosine: accuracy[i].cosine,
      maxAbsError: accuracy[i].maxAbsError,
      top1: accuracy[i].top1,
      transformSeconds: v.transformSeconds,
    }));
  } finally {
    for (const s of sessions) await s.release();
  }
}

/** Median over rounds of a's p50 / b's p50 (measured back to back, so load drift cancels out). */
function pairedRatio(a: Row, b: Row): number {
  return median(a.roundP50s.map((x, i) => x / b.roundP50s[i]));
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function printTable(title: string, rows: Row[]): void {
  const base = rows[0];
  console.log(`\n## ${title} — batch 1, 1 thread; p50 over all rounds (min–max of per-round p50s)`);
  console.log(
    `${pad('variant', 44)} ${lpad('size KB', 9)} ${lpad('smaller', 8)} ${lpad('p50 ms', 8)} ${pad('  (round spread)', 19)} ${lpad('faster', 7)} ${lpad('cosine', 9)} ${lpad('max abs err', 11)} ${lpad('top-1', 6)} ${lpad('quantize s', 10)}`,
  );
  for (const r of rows) {
    const spread = `  (${Math.min(...r.roundP50s).toFixed(3)}–${Math.max(...r.roundP50s).toFixed(3)})`;
    console.log(
      `${pad(r.label, 44)} ${lpad((r.sizeBytes / 1024).toFixed(1), 9)} ${lpad(`${(base.sizeBytes / r.sizeBytes).toFixed(2)}x`, 8)} ${lpad(r.p50Ms.toFixed(3), 8)} ${pad(spread, 19)} ${lpad(`${pairedRatio(base, r).toFixed(2)}x`, 7)} ${lpad(r.cosine.toFixed(6), 9)} ${lpad(r.maxAbsError.toExponential(2), 11)} ${lpad(r.top1 === undefined ? '-' : `${(100 * r.top1).toFixed(0)}%`, 6)} ${lpad(r.transformSeconds === undefined ? '' : r.transformSeconds.toFixed(2), 10)}`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '15' },
      methods: { type: 'string', default: 'minmax' },
      only: { type: 'string' },
      'no-peer': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  const methods = values.methods!.split(',') as CalibrationMethod[];
  const python = values['no-peer'] ? undefined : ensurePeerPython(['onnxruntime', 'onnx', 'numpy']);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-quantize-static-'));
  console.log(
    `# bench/quantize-static — onnxruntime-node ${ort.env.versions.common}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown'}), load average ${os.loadavg()[0].toFixed(2)}`,
  );
  const cnn: CnnSpec = {
    inputShape: [3, 32, 32],
    convs: [{ channels: 32 }, { channels: 64, stride: 2 }, { channels: 128, stride: 2 }],
    classes: 10,
  };
  const workloads: Workload[] = [
    {
      name: 'MLP classifier 784-1024-1024-10 (MatMul + Add + Relu)',
      model: generateMlpModel({ inputDim: 784, hiddenDims: [1024, 1024], outputDim: 10 }),
      input: 'input',
      dims: [1, 784],
    },
    {
      name: 'CNN 3x32x32: Conv 32, Conv 64/2, Conv 128/2, Gemm 10',
      model: generateCnnModel(cnn),
      input: 'input',
      dims: [1, 3, 32, 32],
    },
    {
      name: 'the same CNN at opset 9, weights in Constant nodes, MatMul+Add head',
      model: generateCnnModel({ ...cnn, opset: 9, weightsIn: 'constants', head: 'matmul' }),
      input: 'input',
      dims: [1, 3, 32, 32],
    },
    {
      name: 'transformer encoder block d=768 h=12 ffn=3072, sequence 32',
      model: generateEncoderBlockModel({ dModel: 768, heads: 12, ffnDim: 3072, seqLen: 32 }),
      input: 'input',
      dims: [1, 32, 768],
    },
  ];
  if (values.only) workloads.splice(0, workloads.length, ...workloads.filter((w) => w.name.includes(values.only!)));
  const ratios: Array<{
    workload: string;
    method: string;
    size: number;
    p50: number;
    cosine: number;
    maxAbsError: number;
    peerNote?: string;
  }> = [];
  const allRows: Record<string, Row[]> = {};
  try {
    for (const [wi, w] of workloads.entries()) {
      // The same calibration samples for Ferry (CalibrationSample) and the peer (.npy files + manifest).
      const rand = seededUniform(7);
      const data = Array.from({ length: CALIBRATION_SAMPLES }, () => uniform(w.dims, rand));
      const calibration: CalibrationSample[] = data.map((d) => ({ [w.input]: { dims: w.dims, data: d } }));
      const manifestPath = path.join(dir, `w${wi}-calibration.json`);
      const samples = [];
      for (const [i, d] of data.entries()) {
        const file = path.join(dir, `w${wi}-sample${i}.npy`);
        await writeFile(file, npy(d, w.dims));
        samples.push({ [w.input]: file });
      }
      await writeFile(manifestPath, JSON.stringify({ samples }));
      for (const method of methods) {
        const t = performance.now();
        const workDir = await mkdtemp(path.join(dir, 'ferry-'));
        const result = await int8Static.apply(w.model, {
          analysis: analyzeModel(decodeModel(w.model)),
          target: { kind: 'cpu', sameMachine: false, threads: 1 },
          workDir,
          calibration,
          options: { calibrationMethod: method },
        });
        const seconds = (performance.now() - t) / 1000;
        if (!result.applied) throw new Error(`int8-static did not apply to ${w.name}: ${result.reason}`);
        const variants: Variant[] = [
          { label: 'original (float32)', bytes: w.model },
          { label: `ferry int8-static ${method}`, bytes: result.model, transformSeconds: seconds },
        ];
        if (python) variants.push(await runPeer(python, dir, `w${wi}`, w.model, manifestPath, method));
        const rows = await measure(w, variants, rounds);
        const title = `${w.name} [${method}]`;
        allRows[title] = rows;
        printTable(title, rows);
        const [orig, ferry, peer] = rows;
        if (peer) {
          const peerUntouched = orig.sizeBytes / peer.sizeBytes < 1.5;
          ratios.push({
            workload: w.name,
            method,
            size: ferry.sizeBytes / peer.sizeBytes,
            p50: pairedRatio(ferry, peer),
            cosine: ferry.cosine / peer.cosine,
            maxAbsError: ferry.maxAbsError / peer.maxAbsError,
            peerNote: peerUntouched
              ? `the peer's result is only ${(orig.sizeBytes / peer.sizeBytes).toFixed(2)}x smaller than the original`
              : undefined,
          });
        }
      }
    }
    if (python) {
      console.log(
        '\n## Ferry int8-static / peer (onnxruntime quantize_static, same calibration data): size and p50 < 1, cosine ≥ 1 and max abs err < 1 mean Ferry is better',
      );
      console.log(
        `${pad('workload', 70)} ${pad('method', 10)} ${lpad('size', 7)} ${lpad('p50', 7)} ${lpad('cosine', 9)} ${lpad('max abs err', 11)}`,
      );
      for (const r of ratios) {
        console.log(
          `${pad(r.workload, 70)} ${pad(r.method, 10)} ${lpad(r.size.toFixed(3), 7)} ${lpad(r.p50.toFixed(3), 7)} ${lpad(r.cosine.toFixed(6), 9)} ${lpad(r.maxAbsError.toFixed(3), 11)}${r.peerNote ? `   (${r.peerNote})` : ''}`,
        );
      }
      console.log(
        '(p50 ratios within ~5% are inside the run-to-run noise of a shared machine; see the round spreads above)',
      );
    }
    if (values.json) console.log(JSON.stringify({ rounds, rows: allRows, ratios }, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
