/**
 * What a model is made of, as a JSON-serialisable summary: the upload stage stores it, the optimize stage
 * turns it into recommendations. Counts include nested subgraphs (If/Loop/Scan bodies).
 */
import { forEachGraph, forEachNode, isDefaultDomain, normalizeDomain, subgraphsOf } from './graph';
import type { GraphProto, OnnxModel, TensorProto, TypeProto } from './model';
import { STANDARD_DOMAINS } from './runtimeSupport';
import { gemmDims, inferShapes, matMulShape, type Shape, shapeOfType } from './shapeInference';
import { dataTypeName, elementCount, externalDataEntry, isExternal, TensorDataType, tensorByteSize } from './tensor';

export interface TensorSummary {
  name: string;
  /** Open Inference Protocol datatype (FP32, INT64, BYTES, ...); ONNX's name for types OIP lacks. */
  dataType: string;
  /** number = fixed, string = symbolic (named), null = unknown. */
  shape: Array<number | string | null>;
}

export interface ModelAnalysis {
  irVersion: number;
  producer: { name: string; version: string };
  /** Imported operator sets; the default domain is reported as 'ai.onnx'. */
  opsets: Array<{ domain: string; version: number }>;
  /** Operator domains outside the ONNX standard that nodes use (e.g. com.microsoft, a custom-op library). */
  customDomains: string[];
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** Elements of all stored weights: initializers (sparse: stored values) and Constant nodes, each counted once. */
  parameterCount: number;
  weightBytes: number;
  /** op_type → count, all graphs; ops outside the default domain are keyed 'domain.op_type'. */
  opHistogram: Record<string, number>;
  /** Nodes in all graphs (the histogram's total). */
  nodeCount: number;
  /** Multiply-accumulates of MatMul/Gemm/Conv for one inference, symbolic dims (batch) counted as 1. */
  macsEstimate: number;
  /** MatMul/Gemm/Conv nodes whose shapes were not known, so macsEstimate leaves them out. */
  macsUncountedNodes: number;
  /** Symbolic dim names of the inputs and outputs, and 'tensor[axis]' for dims of unknown size. */
  dynamicDims: string[];
  externalDataFiles: string[];
  /** Every input's first dim is symbolic or unknown, so requests can be batched along it. */
  hasBatchDim: boolean;
}

const OIP_DATATYPES: Partial<Record<TensorDataType, string>> = {
  [TensorDataType.BOOL]: 'BOOL',
  [TensorDataType.UINT8]: 'UINT8',
  [TensorDataType.UINT16]: 'UINT16',
  [TensorDataType.UINT32]: 'UINT32',
  [TensorDataType.UINT64]: 'UINT64',
  [TensorDataType.INT8]: 'INT8',
  [TensorDataType.INT16]: 'INT16',
  [TensorDataType.INT32]: 'INT32',
  [TensorDataType.INT64]: 'INT64',
  [TensorDataType.FLOAT16]: 'FP16',
  [TensorDataType.FLOAT]: 'FP32',
  [TensorDataType.DOUBLE]: 'FP64',
  [TensorDataType.BFLOAT16]: 'BF16',
  [TensorDataType.STRING]: 'BYTES',
};

export function oipDataType(elemType: number): string {
  return OIP_DATATYPES[elemType as TensorDataType] ?? dataTypeName(elemType);
}

function typeName(type: TypeProto | undefined): string {
  if (!type) return 'UNKNOWN';
  if (type.tensor_type) return oipDataType(type.tensor_type.elem_type ?? 0);
  if (type.sparse_tensor_type) return `SPARSE<${oipDataType(type.sparse_tensor_type.elem_type ?? 0)}>`;
  if (type.sequence_type) return `SEQUENCE<${typeName(type.sequence_type.elem_type)}>`;
  if (type.map_type) return `MAP<${oipDataType(type.map_type.key_type ?? 0)},${typeName(type.map_type.value_type)}>`;
  if (type.optional_type) return `OPTIONAL<${typeName(type.optional_type.elem_type)}>`;
  return 'OPAQUE';
}

export function analyzeModel(model: OnnxModel): ModelAnalysis {
  const graph: GraphProto = model.graph ?? {};
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name));
  // Before IR 4 every initializer was also listed as an input; those are weights, not request inputs.
  const summarize = (vi: { name?: string; type?: TypeProto }): TensorSummary => ({
    name: vi.name ?? '',
    dataType: typeName(vi.type),
    shape: shapeOfType(vi.type) ?? [],
  });
  const inputs = (graph.input ?? []).filter((vi) => !initializerNames.has(vi.name)).map(summarize);
  const outputs = (graph.output ?? []).map(summarize);

  const weights = countWeights(graph);
  const { opHistogram, nodeCount, customDomains } = countOps(model, graph);
  const macs = estimateMacs(graph);

  const dynamicDims: string[] = [];
  for (const t of [...inputs, ...outputs]) {
    t.shape.forEach((d, axis) => {
      const name = typeof d === 'string' ? d : d === null ? `${t.name}[${axis}]` : undefined;
      if (name !== undefined && !dynamicDims.includes(name)) dynamicDims.push(name);
    });
  }

  return {
    irVersion: Number(model.ir_version ?? 0),
    producer: { name: model.producer_name ?? '', version: model.producer_version ?? '' },
    opsets: (model.opset_import ?? []).map((o) => ({
      domain: normalizeDomain(o.domain),
      version: Number(o.version ?? 0),
    })),
    customDomains,
    inputs,
    outputs,
    parameterCount: weights.parameterCount,
    weightBytes: weights.weightBytes,
    opHistogram,
    nodeCount,
    macsEstimate: macs.macs,
    macsUncountedNodes: macs.uncounted,
    dynamicDims,
    externalDataFiles: weights.externalDataFiles,
    hasBatchDim: inputs.length > 0 && inputs.every((t) => t.shape.length > 0 && typeof t.shape[0] !== 'number'),
  };
}

/** Weights are counted where they are defined (initializer or Constant), so a tensor read by many nodes counts once. */
function countWeights(graph: GraphProto): { parameterCount: number; weightBytes: number; externalDataFiles: string[] } {
  let parameterCount = 0;
  let weightBytes = 0;
  const files = new Set<string>();
  const addTensor = (t: TensorProto): void => {
    parameterCount += elementCount(t.dims);
    weightBytes += tensorByteSize(t);
    if (isExternal(t)) {
      const location = externalDataEntry(t, 'location');
      if (location) files.add(location);
    }
  };
  forEachGraph(graph, (g) => {
    for (const t of g.initializer ?? []) addTensor(t);
    for (const s of g.sparse_initializer ?? []) {
      if (!s.values) continue;
      parameterCount += elementCount(s.values.dims);
      weightBytes += tensorByteSize(s.values) + (s.indices ? tensorByteSize(s.indices) : 0);
    }
    for (const node of g.node ?? []) {
      if (node.op_type !== 'Constant' || !isDefaultDomain(node.domain)) continue;
      for (const a of node.attribute ?? []) {
        if (a.name === 'value' && a.t) addTensor(a.t);
        else if (a.name === 'sparse_value' && a.sparse_tensor?.values) {
          parameterCount += elementCount(a.sparse_tensor.values.dims);
          weightBytes += tensorByteSize(a.sparse_tensor.values);
        } else if (a.name === 'value_float' || a.name === 'value_int') {
          parameterCount += 1;
          weightBytes += a.name === 'value_float' ? 4 : 8;
        } else if (a.name === 'value_floats' || a.name === 'value_ints') {
          const n = a.name === 'value_floats' ? (a.floats?.length ?? 0) : (a.ints?.length ?? 0);
          parameterCount += n;
          weightBytes += n * (a.name === 'value_floats' ? 4 : 8);
        }
      }
    }
  });
  return { parameterCount, weightBytes, externalDataFiles: [...files].sort() };
}

function countOps(
  model: OnnxModel,
  graph: GraphProto,
): { opHistogram: Record<string, number>; nodeCount: number; customDomains: string[] } {
  const opHistogram: Record<string, number> = {};
  const localFunctions = new Set((model.functions ?? []).map((f) => `${normalizeDomain(f.domain)}:${f.name}`));
  const custom = new Set<string>();
  let nodeCount = 0;
  forEachNode(graph, (node) => {
    const domain = normalizeDomain(node.domain);
    const key = domain === 'ai.onnx' ? (node.op_type ?? '') : `${domain}.${node.op_type}`;
    opHistogram[key] = (opHistogram[key] ?? 0) + 1;
    nodeCount++;
    // A call of a function defined in the model needs no operator library.
    if (!STANDARD_DOMAINS.has(domain) && !localFunctions.has(`${domain}:${node.op_type}`)) custom.add(domain);
  });
  return { opHistogram, nodeCount, customDomains: [...custom].sort() };
}

/** Symbolic dims count as 1 (one batch item); an unknown dim makes the node uncountable. */
function product(dims: Shape): number | undefined {
  let n = 1;
  for (const d of dims) {
    if (d === null) return undefined;
    if (typeof d === 'number') n *= d;
  }
  return n;
}

function estimateMacs(root: GraphProto): { macs: number; uncounted: number } {
  let macs = 0;
  let uncounted = 0;
  const visit = (graph: GraphProto, outer?: Map<string, Shape>): void => {
    const shapes = inferShapes(graph, outer);
    for (const node of graph.node ?? []) {
      for (const sub of subgraphsOf(node)) visit(sub.graph, shapes);
      if (!isDefaultDomain(node.domain)) continue;
      const op = node.op_type;
      if (op !== 'MatMul' && op !== 'Gemm' && op !== 'Conv') continue;
      const a = shapes.get(node.input?.[0] ?? '');
      const b = shapes.get(node.input?.[1] ?? '');
      const count = a && b ? nodeMacs(node, a, b, shapes.get(node.output?.[0] ?? '')) : undefined;
      if (count === undefined) uncounted++;
      else macs += count;
    }
  };
  visit(root);
  return { macs, uncounted };
}

function nodeMacs(
  node: NonNullable<GraphProto['node']>[number],
  a: Shape,
  b: Shape,
  out: Shape | undefined,
): number | undefined {
  switch (node.op_type) {
    case 'MatMul': {
      const o = matMulShape(a, b);
      const k = a[a.length - 1];
      return o ? mul(product(o), product([k])) : undefined;
    }
    case 'Gemm': {
      const d = gemmDims(node, a, b);
      return d ? product([d.m, d.k, d.n]) : undefined;
    }
    case 'Conv': {
      // Each output element is a dot product over (input channels / group) × kernel window = weight dims 1..n.
      return out ? mul(product(out), product(b.slice(1))) : undefined;
    }
    default:
      return undefined;
  }
}

function mul(x: number | undefined, y: number | undefined): number | undefined {
  return x === undefined || y === undefined ? undefined : x * y;
}
