/**
 * Element types (and shapes) of every value of a model's main graph, as onnxruntime infers them: a copy of the
 * model lists every node output as a graph output, onnxruntime resolves the graph without optimizing it, and
 * the session's output metadata names each value's type. Exact for any op onnxruntime knows, contrib ops included.
 */
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel } from '../../onnx/model';

export interface ValueType {
  /** onnxruntime's tensor type name ('float32', 'float16', 'int64', ...), or undefined for a non-tensor value. */
  type?: string;
  shape: ReadonlyArray<number | string>;
}

export async function valueTypesFromOnnxruntime(modelBytes: Uint8Array): Promise<Map<string, ValueType>> {
  const model = decodeModel(modelBytes);
  const graph = model.graph ?? {};
  const listed = new Set((graph.output ?? []).map((o) => o.name));
  graph.output ??= [];
  for (const node of graph.node ?? []) {
    for (const out of node.output ?? []) {
      if (out && !listed.has(out)) {
        graph.output.push({ name: out });
        listed.add(out);
      }
    }
  }
  const session = await ort.InferenceSession.create(encodeModel(model), {
    graphOptimizationLevel: 'disabled',
    logSeverityLevel: 3,
  });
  try {
    const types = new Map<string, ValueType>();
    for (const m of [...session.inputMetadata, ...session.outputMetadata]) {
      types.set(m.name, m.isTensor ? { type: m.type, shape: m.shape } : { shape: [] });
    }
    return types;
  } finally {
    await session.release();
  }
}
