/**
 * INT8 dynamic quantization and FP16 weights, measured side by side in one run against the original model and
 * against the peer: onnxruntime's own Python quantizer (`quantize_dynamic`, per-channel QInt8 weights) on the
 * same models, its output timed in this same Node process the same way.
 *
 *   npx tsx bench/quantize.ts [--rounds 5] [--no-peer] [--json]
 *
 * Models: a 4-layer MLP of width 1024 with weights in initializers, the same with weights in Constant nodes
 * (as many exporters write them), the same as PyTorch exports nn.Linear (Gemm, transB=1), and a BERT-base-sized
 * transformer encoder block (d=768, 12 heads, FFN 3072) at sequence lengths 32 and 128.
 * Latency: p50 at batch 1, one thread (intra- and inter-op), variants interleaved in many short rounds so that
 * load from other processes hits them alike; the spread of the per-round p50s is printed next to it, and
 * speed-up ratios are medians of per-round ratios (variants measured back to back).
 * Accuracy: cosine similarity and max abs error (lib/optimize/agreement.ts) against the original over 8 seeded inputs.
 * The peer runs in a virtualenv under ~/.cache/ferry/bench-venv (or $FERRY_BENCH_VENV), created (pip install onnxruntime onnx) when missing.
 * This is a benchmark: it prints figures and checks targets, it never gates tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { makeNode } from '../lib/onnx/builders';
import { generateEncoderBlockModel } from '../lib/onnx/encoderBlock';
import { buildMlpModel, generateMlpModel, seededUniform } from '../lib/onnx/generate';
import { encodeModel } from '../lib/onnx/model';
import { float32Tensor, tensorToFloat32 } from '../lib/onnx/tensor';
import { storeWeightsAsFloat16 } from '../lib/optimize/techniques/fp16';
import { quantizeDynamicInt8 } from '../lib/optimize/techniques/int8Dynamic';
import { agreementOf, type OrtOutputs } from '../lib/optimize/techniques/modelAgreement';
import { ensurePeerPython } from './peers/peerVenv';

const PEER_SCRIPT = path.join(__dirname, 'peers', 'quantize_dynamic_peer.py');
const WIDTH = 1024;

ort.env.logLevel = 'error';

interface Variant {
  label: string;
  bytes: Uint8Array;
  /** Seconds the transform took (Ferry in this process; the peer as its script measured it). */
  transformSeconds?: number;
}

interface Workload {
  name: string;
  model: string;
  feeds: Record<string, ort.Tensor>;
  accuracyFeeds: Array<Record<string, ort.Tensor>>;
}

interface Row {
  label: string;
  sizeBytes: number;
  p50Ms: number;
  roundP50s: number[];
  cosine: number;
  maxAbsError: number;
  transformSeconds?: number;
}

function randomFeeds(name: string, dims: number[], seed: number): Record<string, ort.Tensor> {
  const rand = seededUniform(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return {
    [name]: new ort.Tensor(
      'float32',
      Float32Array.from({ length: n }, () => rand() * 2 - 1),
      dims,
    ),
  };
}

/** The MLP as PyTorch exports nn.Linear for 2-D inputs: Gemm(A, W[out, in], b, transB=1). */
function gemmMlp(): Uint8Array {
  const model = buildMlpModel({
    inputDim: WIDTH,
    hiddenDims: [WIDTH, WIDTH, WIDTH],
    outputDim: WIDTH,
    name: 'mlp-gemm',
  });
  const graph = model.graph!;
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const nodes = graph.node!;
  const out = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (n.op_type !== 'MatMul') {
      out.push(n);
      continue;
    }
    const add = nodes[i + 1];
    const w = inits.get(n.input![1])!;
    const [k, m] = w.dims!.map(Number);
    const data = tensorToFloat32(w);
    const transposed = new Float32Array(k * m);
    for (let r = 0; r < k; r++) for (let c = 0; c < m; c++) transposed[c * k + r] = data[r * m + c];
    inits.set(w.name!, float32Tensor(w.name!, [m, k], transposed));
    out.push(
      makeNode('Gemm', [n.input![0], w.name!, add.input![1]], add.output!, {
        name: n.name!.replace('matmul', 'gemm'),
        attributes: [{ name: 'transB', type: 2, i: 1 }],
      }),
    );
    i++;
  }
  graph.node = out;
  graph.initializer = [...inits.values()];
  return encodeModel(model);
}

async function runPeer(
  python: string,
  dir: string,
  name: string,
  model: Uint8Array,
): Promise<Variant & { version: string }> {
  const src = path.join(dir, `${name}.onnx`);
  const dst = path.join(dir, `${name}.peer.onnx`);
  await writeFile(src, model);
  const out = execFileSync(python, [PEER_SCRIPT, src, dst], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .trim()
    .split('\n')
    .pop()!;
  const info = JSON.parse(out) as { onnxruntime: string; seconds: number };
  return {
    label: `peer int8 (ORT ${info.onnxruntime} quantize_dynamic)`,
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

async function measure(workload: Workload, variants: Variant[], rounds: number): Promise<Row[]> {
  const sessions = await Promise.all(variants.map((v) => session(v.bytes)));
  try {
    // Accuracy against the original (variant 0) on the same seeded inputs.
    const outputs: OrtOutputs[][] = [];
    for (const s of sessions) {
      const outs: OrtOutputs[] = [];
      for (const feeds of workload.accuracyFeeds) outs.push((await s.run(feeds)) as OrtOutputs);
      outputs.push(outs);
    }
    const accuracy = outputs.map((o) => {
      const { cosine, maxAbsError } = agreementOf(outputs[0]!, o);
      return { cosine, maxAbsError };
    });
    // Iterations per round: about 0.1 s of the original's time, at least 10; many short rounds spread bursts of load evenly.
    for (const s of sessions) for (let i = 0; i < 5; i++) await s.run(workload.feeds);
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await sessions[0].run(workload.feeds);
    const perRun = (performance.now() - t0) / 5;
    const iterations = Math.max(10, Math.min(200, Math.round(100 / perRun)));
    const samples: number[][] = variants.map(() => []);
    const roundP50s: number[][] = variants.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let v = 0; v < variants.length; v++) {
        const s = sessions[v];
        for (let i = 0; i < 3; i++) await s.run(workload.feeds);
        const round: number[] = [];
        for (let i = 0; i < iterations; i++) {
          const start = process.hrtime.bigint();
          await s.run(workload.feeds);
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
      ...accuracy[i],
      transformSeconds: v.transformSeconds,
    }));
  } finally {
    for (const s of sessions) await s.release();
  }
}

/** How many times slower `a` is than `b`, from rounds measured back to back (load drift cancels out): median of per-round ratios. */
function pairedRatio(a: Row, b: Row): number {
  return median(a.roundP50s.map((x, i) => x / b.roundP50s[i]));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function printTable(workload: Workload, rows: Row[]): void {
  const base = rows[0];
  console.log(`\n## ${workload.name} — batch 1, 1 thread; p50 over all rounds (min–max of per-round p50s)`);
  console.log(
    `${pad('variant', 40)} ${lpad('size MB', 8)} ${lpad('smaller', 8)} ${lpad('p50 ms', 8)} ${pad('  (round spread)', 18)} ${lpad('faster', 7)} ${lpad('cosine', 9)} ${lpad('max abs err', 11)} ${lpad('transform s', 11)}`,
  );
  for (const r of rows) {
    const spread = `  (${Math.min(...r.roundP50s).toFixed(3)}–${Math.max(...r.roundP50s).toFixed(3)})`;
    console.log(
      `${pad(r.label, 40)} ${lpad((r.sizeBytes / 1048576).toFixed(2), 8)} ${lpad(`${(base.sizeBytes / r.sizeBytes).toFixed(2)}x`, 8)} ${lpad(r.p50Ms.toFixed(3), 8)} ${pad(spread, 18)} ${lpad(`${(base.p50Ms / r.p50Ms).toFixed(2)}x`, 7)} ${lpad(r.cosine.toFixed(6), 9)} ${lpad(r.maxAbsError.toExponential(2), 11)} ${lpad(r.transformSeconds === undefined ? '' : r.transformSeconds.toFixed(2), 11)}`,
    );
  }
}

interface Verdict {
  workload: string;
  int8Smaller: number;
  int8Faster: number;
  int8Cosine: number;
  fp16Smaller: number;
  fp16MaxAbsError: number;
  peer?: {
    size: number;
    latency: number;
    cosine: number;
    maxAbsError: number;
    peerSmaller: number;
    peerFaster: number;
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '15' },
      'no-peer': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  const withPeer = !values['no-peer'];
  const python = withPeer ? ensurePeerPython(['onnxruntime', 'onnx']) : undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-quantize-'));
  console.log(
    `# bench/quantize — onnxruntime-node ${ort.env.versions.common}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown'}), load average ${os.loadavg()[0].toFixed(2)}`,
  );
  try {
    const models: Record<string, Uint8Array> = {
      'mlp-init': generateMlpModel({
        inputDim: WIDTH,
        hiddenDims: [WIDTH, WIDTH, WIDTH],
        outputDim: WIDTH,
        name: 'mlp',
      }),
      'mlp-const': generateMlpModel({
        inputDim: WIDTH,
        hiddenDims: [WIDTH, WIDTH, WIDTH],
        outputDim: WIDTH,
        name: 'mlp',
        weightsIn: 'constants',
      }),
      'mlp-gemm': gemmMlp(),
      encoder: generateEncoderBlockModel({ dModel: 768, heads: 12, ffnDim: 3072, seqLen: 'sequence' }),
    };
    const accuracy = (name: string, dims: number[]) =>
      Array.from({ length: 8 }, (_, i) => randomFeeds(name, dims, 100 + i));
    const workloads: Workload[] = [
      {
        name: `MLP 4x${WIDTH}, weights in initializers (MatMul + Add)`,
        model: 'mlp-init',
        feeds: randomFeeds('input', [1, WIDTH], 1),
        accuracyFeeds: accuracy('input', [1, WIDTH]),
      },
      {
        name: `MLP 4x${WIDTH}, weights in Constant nodes`,
        model: 'mlp-const',
        feeds: randomFeeds('input', [1, WIDTH], 1),
        accuracyFeeds: accuracy('input', [1, WIDTH]),
      },
      {
        name: `MLP 4x${WIDTH} as PyTorch exports Linear (Gemm transB=1)`,
        model: 'mlp-gemm',
        feeds: randomFeeds('input', [1, WIDTH], 1),
        accuracyFeeds: accuracy('input', [1, WIDTH]),
      },
      {
        name: 'transformer encoder block d=768 h=12 ffn=3072, sequence 32',
        model: 'encoder',
        feeds: randomFeeds('input', [1, 32, 768], 1),
        accuracyFeeds: accuracy('input', [1, 32, 768]),
      },
      {
        name: 'transformer encoder block d=768 h=12 ffn=3072, sequence 128',
        model: 'encoder',
        feeds: randomFeeds('input', [1, 128, 768], 1),
        accuracyFeeds: accuracy('input', [1, 128, 768]).slice(0, 4),
      },
    ];
    const variantsByModel = new Map<string, Variant[]>();
    for (const [name, bytes] of Object.entries(models)) {
      let t = performance.now();
      const int8 = quantizeDynamicInt8(bytes);
      const int8Seconds = (performance.now() - t) / 1000;
      if (!int8.model) throw new Error(`int8-dynamic did not apply to ${name}: ${JSON.stringify(int8.report.skipped)}`);
      t = performance.now();
      const fp16 = storeWeightsAsFloat16(bytes);
      const fp16Seconds = (performance.now() - t) / 1000;
      if (!fp16.model) throw new Error(`fp16-weights did not apply to ${name}`);
      const variants: Variant[] = [
        { label: 'original (float32)', bytes },
        { label: 'ferry int8-dynamic', bytes: int8.model, transformSeconds: int8Seconds },
        { label: 'ferry fp16-weights', bytes: fp16.model, transformSeconds: fp16Seconds },
      ];
      if (python) variants.push(await runPeer(python, dir, name, bytes));
      variantsByModel.set(name, variants);
    }
    const verdicts: Verdict[] = [];
    const allRows: Record<string, Row[]> = {};
    for (const w of workloads) {
      const rows = await measure(w, variantsByModel.get(w.model)!, rounds);
      allRows[w.name] = rows;
      printTable(w, rows);
      const [orig, int8, fp16, peer] = rows;
      verdicts.push({
        workload: w.name,
        int8Smaller: orig.sizeBytes / int8.sizeBytes,
        int8Faster: pairedRatio(orig, int8),
        int8Cosine: int8.cosine,
        fp16Smaller: orig.sizeBytes / fp16.sizeBytes,
        fp16MaxAbsError: fp16.maxAbsError,
        ...(peer
          ? {
              peer: {
                size: int8.sizeBytes / peer.sizeBytes,
                latency: pairedRatio(int8, peer),
                cosine: int8.cosine / peer.cosine,
                maxAbsError: int8.maxAbsError / peer.maxAbsError,
                peerSmaller: orig.sizeBytes / peer.sizeBytes,
                peerFaster: pairedRatio(orig, peer),
              },
            }
          : {}),
      });
    }

    const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(
      '\n## targets (int8: ≥3.5x smaller, ≥2.5x faster, cosine ≥0.999; fp16: ≥1.95x smaller); speed-ups are medians of per-round ratios',
    );
    for (const v of verdicts) {
      console.log(
        `${pad(v.workload, 62)} int8 ${v.int8Smaller.toFixed(2)}x smaller ${mark(v.int8Smaller >= 3.5)}, ${v.int8Faster.toFixed(2)}x faster ${mark(v.int8Faster >= 2.5)}, cosine ${v.int8Cosine.toFixed(5)} ${mark(v.int8Cosine >= 0.999)}; fp16 ${v.fp16Smaller.toFixed(2)}x smaller ${mark(v.fp16Smaller >= 1.95)} (max abs err ${v.fp16MaxAbsError.toExponential(2)})`,
      );
    }
    if (withPeer) {
      console.log(
        '\n## Ferry int8-dynamic / peer (onnxruntime quantize_dynamic): size and p50 < 1 and cosine ≥ 1 mean Ferry is better',
      );
      console.log(
        `${pad('workload', 62)} ${lpad('size', 7)} ${lpad('p50', 7)} ${lpad('cosine', 9)} ${lpad('max abs err', 11)}   peer vs original`,
      );
      for (const v of verdicts) {
        const p = v.peer!;
        const untouched =
          p.peerSmaller < 1.05 ? ' — the peer left the weights float32 (it quantizes initializers only)' : '';
        console.log(
          `${pad(v.workload, 62)} ${lpad(p.size.toFixed(3), 7)} ${lpad(p.latency.toFixed(3), 7)} ${lpad(p.cosine.toFixed(6), 9)} ${lpad(untouched ? 'n/a' : p.maxAbsError.toFixed(3), 11)}   ${p.peerSmaller.toFixed(2)}x smaller, ${p.peerFaster.toFixed(2)}x faster${untouched}`,
        );
      }
      console.log(
        '(p50 ratios within ~5% are inside the run-to-run noise of a shared machine; see the round spreads above)',
      );
    }
    if (values.json) console.log(JSON.stringify({ rounds, rows: allRows, verdicts }, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
