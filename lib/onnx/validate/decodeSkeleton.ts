/**
 * The skeleton decoded into an OnnxModel, with each stripped tensor linked back to its bytes in the file,
 * and the "is this ONNX at all" questions answered.
 */
import { attributeTensors, forEachGraph, nodeLabel } from '../graph';
import { decodeModel, type GraphProto, type OnnxModel, type TensorProto } from '../model';
import { UNKNOWN_FIELDS } from '../schema';
import { ModelValidationError } from './errors';
import { encodeVarint, type ModelSkeleton, RAW_DATA_MARKER_FIELD, type TensorByteRange } from './wireSkeleton';

export interface DecodedSkeleton {
  model: OnnxModel;
  /** The file range holding a tensor's raw_data, for tensors whose payload the skeleton left out. */
  rawDataRange(t: TensorProto): TensorByteRange | undefined;
}

export function decodeSkeleton(skeleton: ModelSkeleton): DecodedSkeleton {
  let model: OnnxModel;
  try {
    model = decodeModel(skeleton.bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ModelValidationError(
      'not-protobuf',
      `the file is not a readable ONNX protobuf (${reason}): it may be truncated, corrupted, or not an ONNX model at all`,
    );
  }
  // Protobuf decodes many arbitrary byte strings without error. Every ONNX writer sets ir_version and
  // opset_import; with neither, this is not an ONNX model (the graph field may even be there by chance).
  if (model.ir_version === undefined && (model.opset_import?.length ?? 0) === 0) {
    const unknown = model[UNKNOWN_FIELDS]?.length ?? 0;
    throw new ModelValidationError(
      'not-protobuf',
      `the file has neither ir_version nor opset_import (and ${unknown} unrecognised field${unknown === 1 ? '' : 's'}): ` +
        'it is not an ONNX model',
    );
  }
  if (!model.graph) {
    throw new ModelValidationError(
      'no-graph',
      'the model has no graph: export the model again with its computation graph',
    );
  }

  const ranges = new WeakMap<TensorProto, TensorByteRange>();
  const link = (t: TensorProto): void => {
    const index = markerIndex(t);
    if (index === undefined) return;
    ranges.set(t, skeleton.tensorRanges[index]);
    t.raw_data = undefined; // a marker stands where raw_data was; a tensor cannot also keep an inline copy
  };
  forEachTensor(model.graph, link);
  for (const info of model.training_info ?? []) {
    if (info.initialization) forEachTensor(info.initialization, link);
    if (info.algorithm) forEachTensor(info.algorithm, link);
  }
  return { model, rawDataRange: (t) => ranges.get(t) };
}

/** Every stored tensor of a graph and its subgraphs: initializers, sparse initializers, attribute tensors. */
export function forEachTensor(graph: GraphProto, visit: (t: TensorProto, what: string) => void): void {
  forEachGraph(graph, (g, location) => {
    for (const init of g.initializer ?? []) visit(init, `initializer '${init.name}' in ${location}`);
    for (const sparse of g.sparse_initializer ?? []) {
      if (sparse.values) visit(sparse.values, `sparse initializer '${sparse.values.name}' (values) in ${location}`);
      if (sparse.indices) visit(sparse.indices, `sparse initializer '${sparse.values?.name}' (indices) in ${location}`);
    }
    (g.node ?? []).forEach((node, index) => {
      for (const { attribute, tensor } of attributeTensors(node)) {
        visit(tensor, `tensor attribute '${attribute.name}' of node ${nodeLabel(node, index)} in ${location}`);
      }
    });
  });
}

const MARKER_TAG = encodeVarint(RAW_DATA_MARKER_FIELD * 8);

/** The marker's value, when the tensor's unknown fields hold the walk's marker (the walk drops any other). */
function markerIndex(t: TensorProto): number | undefined {
  const chunks = t[UNKNOWN_FIELDS];
  if (!chunks) return undefined;
  const at = chunks.findIndex((c) => MARKER_TAG.every((b, i) => c[i] === b));
  if (at < 0) return undefined;
  const chunk = chunks[at];
  let value = 0;
  let scale = 1;
  for (let i = MARKER_TAG.length; i < chunk.length; i++) {
    value += (chunk[i] & 0x7f) * scale;
    scale *= 0x80;
  }
  chunks.splice(at, 1);
  if (chunks.length === 0) delete t[UNKNOWN_FIELDS];
  return value;
}
