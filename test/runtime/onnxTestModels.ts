/**
 * Tiny ONNX models for the runtime and gateway tests, encoded with protobufjs from a hand-written
 * subset of onnx.proto (field numbers from the ONNX spec). lib/onnx will have a full generator; these
 * tests need an MLP, a model that echoes every protocol datatype, and a few single-op models for batching.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

const onnxSubset = protobuf.Root.fromJSON({
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { id: 1, type: 'int64' },
            producerName: { id: 2, type: 'string' },
            graph: { id: 7, type: 'GraphProto' },
            opsetImport: { id: 8, type: 'OperatorSetIdProto', rule: 'repeated' },
          },
        },
        OperatorSetIdProto: { fields: { domain: { id: 1, type: 'string' }, version: { id: 2, type: 'int64' } } },
        GraphProto: {
          fields: {
            node: { id: 1, type: 'NodeProto', rule: 'repeated' },
            name: { id: 2, type: 'string' },
            initializer: { id: 5, type: 'TensorProto', rule: 'repeated' },
            input: { id: 11, type: 'ValueInfoProto', rule: 'repeated' },
            output: { id: 12, type: 'ValueInfoProto', rule: 'repeated' },
          },
        },
        NodeProto: {
          fields: {
            input: { id: 1, type: 'string', rule: 'repeated' },
            output: { id: 2, type: 'string', rule: 'repeated' },
            name: { id: 3, type: 'string' },
            opType: { id: 4, type: 'string' },
          },
        },
        TensorProto: {
          fields: {
            dims: { id: 1, type: 'int64', rule: 'repeated' },
            dataType: { id: 2, type: 'int32' },
            name: { id: 8, type: 'string' },
            rawData: { id: 9, type: 'bytes' },
          },
        },
        ValueInfoProto: { fields: { name: { id: 1, type: 'string' }, type: { id: 2, type: 'TypeProto' } } },
        TypeProto: {
          fields: { tensorType: { id: 1, type: 'TensorTypeProto' } },
        },
        TensorTypeProto: { fields: { elemType: { id: 1, type: 'int32' }, shape: { id: 2, type: 'TensorShapeProto' } } },
        TensorShapeProto: { fields: { dim: { id: 1, type: 'Dimension', rule: 'repeated' } } },
        Dimension: { fields: { dimValue: { id: 1, type: 'int64' }, dimParam: { id: 2, type: 'string' } } },
      },
    },
  },
});
const ModelProto = onnxSubset.lookupType('onnx.ModelProto');

/** TensorProto.DataType codes. */
export const OnnxType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

type Dim = number | string;

function valueInfo(name: string, elemType: number, shape: Dim[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function floatInitializer(name: string, dims: number[], values: Float32Array) {
  return {
    name,
    dims,
    dataType: OnnxType.FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

function encodeModel(graph: object, opset = 13): Uint8Array {
  const message = ModelProto.fromObject({
    irVersion: 8,
    producerName: 'ferry-tests',
    opsetImport: [{ domain: '', version: opset }],
    graph,
  });
  return ModelProto.encode(message).finish();
}

/** Mulberry32, so the same seed gives the same weights on every run. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** input "input" [batch, inputDim] FP32 → MatMul+Add+Relu per hidden layer → MatMul+Add → "output". */
export function mlpModel(opts: {
  inputDim: number;
  hiddenDims: number[];
  outputDim: number;
  seed?: number;
}): Uint8Array {
  const rand = seededRandom(opts.seed ?? 1);
  const dims = [opts.inputDim, ...opts.hiddenDims, opts.outputDim];
  const nodes: object[] = [];
  const initializers: object[] = [];
  let current = 'input';
  for (let layer = 0; layer < dims.length - 1; layer++) {
    const [fanIn, fanOut] = [dims[layer], dims[layer + 1]];
    const w = Float32Array.from({ length: fanIn * fanOut }, () => (rand() * 2 - 1) / Math.sqrt(fanIn));
    const b = Float32Array.from({ length: fanOut }, () => rand() * 0.1);
    initializers.push(floatInitializer(`w${layer}`, [fanIn, fanOut], w), floatInitializer(`b${layer}`, [fanOut], b));
    const last = layer === dims.length - 2;
    nodes.push({ opType: 'MatMul', input: [current, `w${layer}`], output: [`mm${layer}`], name: `matmul${layer}` });
    nodes.push({
      opType: 'Add',
      input: [`mm${layer}`, `b${layer}`],
      output: [last ? 'output' : `add${layer}`],
      name: `add${layer}`,
    });
    if (!last) nodes.push({ opType: 'Relu', input: [`add${layer}`], output: [`relu${layer}`], name: `relu${layer}` });
    current = `relu${layer}`;
  }
  return encodeModel({
    name: 'mlp',
    node: nodes,
    initializer: initializers,
    input: [valueInfo('input', OnnxType.FLOAT, ['batch', opts.inputDim])],
    output: [valueInfo('output', OnnxType.FLOAT, ['batch', opts.outputDim])],
  });
}

/** The protocol datatypes and their ONNX element types. */
export const ECHO_DATATYPES = {
  FP16: OnnxType.FLOAT16,
  FP32: OnnxType.FLOAT,
  FP64: OnnxType.DOUBLE,
  INT8: OnnxType.INT8,
  INT16: OnnxType.INT16,
  INT32: OnnxType.INT32,
  INT64: OnnxType.INT64,
  UINT8: OnnxType.UINT8,
  UINT16: OnnxType.UINT16,
  UINT32: OnnxType.UINT32,
  UINT64: OnnxType.UINT64,
  BOOL: OnnxType.BOOL,
  BYTES: OnnxType.STRING,
} as const;

/** For each datatype T: input "x_T" [n] → Identity → output "y_T". */
export function echoAllDatatypesModel(): Uint8Array {
  const entries = Object.entries(ECHO_DATATYPES);
  return encodeModel({
    name: 'echo',
    node: entries.map(([t]) => ({ opType: 'Identity', input: [`x_${t}`], output: [`y_${t}`], name: `id_${t}` })),
    input: entries.map(([t, onnx]) => valueInfo(`x_${t}`, onnx, ['n'])),
    output: entries.map(([t, onnx]) => valueInfo(`y_${t}`, onnx, ['n'])),
  });
}

/**
 * Embedding lookup: "ids" INT64 [batch, k] → Gather over a [rows, dim] table → "vectors" FP32 [batch, k, dim].
 * An id outside [-rows, rows) makes onnxruntime fail the whole run: the value-dependent error batching must isolate.
 */
export function gatherModel(opts: { rows: number; dim: number; seed?: number }): Uint8Array {
  const rand = seededRandom(opts.seed ?? 5);
  const table = Float32Array.from({ length: opts.rows * opts.dim }, () => rand() * 2 - 1);
  return encodeModel({
    name: 'gather',
    node: [{ opType: 'Gather', input: ['table', 'ids'], output: ['vectors'], name: 'gather' }],
    initializer: [floatInitializer('table', [opts.rows, opts.dim], table)],
    input: [valueInfo('ids', OnnxType.INT64, ['batch', 'k'])],
    output: [valueInfo('vectors', OnnxType.FLOAT, ['batch', 'k', opts.dim])],
  });
}

/** "x" FP32 [batch, width] → Neg → "y": two dynamic dimensions, so requests of different widths cannot merge. */
export function negateModel(): Uint8Array {
  return encodeModel({
    name: 'negate',
    node: [{ opType: 'Neg', input: ['x'], output: ['y'], name: 'neg' }],
    input: [valueInfo('x', OnnxType.FLOAT, ['batch', 'width'])],
    output: [valueInfo('y', OnnxType.FLOAT, ['batch', 'width'])],
  });
}

/**
 * "x" FP32 [batch, width] → Transpose → "y" [width, batch]: both first dimensions are dynamic, but the
 * output's first dimension is not the batch — what a merged run must notice.
 */
export function transposeModel(): Uint8Array {
  return encodeModel({
    name: 'transpose',
    node: [{ opType: 'Transpose', input: ['x'], output: ['y'], name: 'transpose' }],
    input: [valueInfo('x', OnnxType.FLOAT, ['batch', 'width'])],
    output: [valueInfo('y', OnnxType.FLOAT, ['width', 'batch'])],
  });
}

/** "x" FP32 [1, 4] → Relu → "y" [1, 4]: a fixed first dimension, so no batching. */
export function fixedBatchModel(): Uint8Array {
  return encodeModel({
    name: 'fixed',
    node: [{ opType: 'Relu', input: ['x'], output: ['y'], name: 'relu' }],
    input: [valueInfo('x', OnnxType.FLOAT, [1, 4])],
    output: [valueInfo('y', OnnxType.FLOAT, [1, 4])],
  });
}

export interface TestModelFile {
  name: string;
  version: string;
  bytes: Uint8Array;
  sessionOptions?: object;
  batching?: boolean | { maxBatchSize?: number; maxQueueDelayMs?: number };
}

/** Writes `<dir>/<name>/<version>/model.onnx` files and the ferry-models.json that lists them. */
export async function writeModelDir(dir: string, models: TestModelFile[]): Promise<string> {
  const manifest = { models: [] as object[] };
  for (const m of models) {
    const rel = path.join(m.name, m.version, 'model.onnx');
    await mkdir(path.join(dir, path.dirname(rel)), { recursive: true });
    await writeFile(path.join(dir, rel), m.bytes);
    manifest.models.push({
      name: m.name,
      version: m.version,
      path: rel,
      ...(m.sessionOptions ? { sessionOptions: m.sessionOptions } : {}),
      ...(m.batching !== undefined ? { batching: m.batching } : {}),
    });
  }
  await writeFile(path.join(dir, 'ferry-models.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
