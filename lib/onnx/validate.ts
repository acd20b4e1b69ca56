/**
 * Upload-time validation of an untrusted .onnx file: everything that can be checked without running it.
 * Each failure is a ModelValidationError whose `code` says what kind of problem it is and whose message
 * names the node or tensor at fault, so the person uploading can fix the model.
 */
import { analyzeModel, type ModelAnalysis } from './analyze';
import {
  attributeTensors,
  forEachGraph,
  forEachNode,
  type GraphLocation,
  MAIN_GRAPH,
  nodeLabel,
  normalizeDomain,
  subgraphLocation,
  subgraphsOf,
} from './graph';
import { decodeModel, type GraphProto, type OnnxModel, type TensorProto } from './model';
import { MAX_IR_VERSION, MAX_OPSET_BY_DOMAIN, MIN_DEFAULT_OPSET } from './runtimeSupport';
import { UNKNOWN_FIELDS } from './schema';
import {
  bitsPerElement,
  dataTypeName,
  elementCount,
  externalDataEntry,
  isExternal,
  rawByteLength,
  TensorDataType,
} from './tensor';

export type ModelValidationCode =
  | 'empty-model'
  | 'too-large'
  | 'not-protobuf'
  | 'no-graph'
  | 'unsupported-ir-version'
  | 'missing-opset-import'
  | 'unsupported-opset'
  | 'duplicate-name'
  | 'dangling-input'
  | 'dangling-output'
  | 'cycle'
  | 'bad-data-type'
  | 'initializer-size-mismatch'
  | 'external-data-path';

export class ModelValidationError extends Error {
  override readonly name = 'ModelValidationError';
  constructor(
    readonly code: ModelValidationCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ValidateOptions {
  /** Largest model accepted, counting external data files whose length the model declares. */
  maxBytes?: number;
}

export interface ValidatedModel {
  model: OnnxModel;
  analysis: ModelAnalysis;
}

/** protobuf's own ceiling for one message; larger models must keep weights in external data. */
export const DEFAULT_MAX_MODEL_BYTES = 2 * 1024 ** 3 - 1;

export function validateModel(bytes: Uint8Array, opts: ValidateOptions = {}): ValidatedModel {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  if (bytes.length === 0) throw new ModelValidationError('empty-model', 'the file is empty (0 bytes)');
  if (bytes.length > maxBytes) {
    throw new ModelValidationError(
      'too-large',
      `the model is ${bytes.length} bytes, over the limit of ${maxBytes} bytes`,
    );
  }

  const model = decodeOrExplain(bytes);
  checkHeader(model);
  const graph = model.graph as GraphProto;
  checkOperatorDomains(model, graph);
  checkGraph(graph, new Set(), MAIN_GRAPH);
  const externalBytes = checkTensors(graph);
  if (bytes.length + externalBytes > maxBytes) {
    throw new ModelValidationError(
      'too-large',
      `the model with its external data is ${bytes.length + externalBytes} bytes, over the limit of ${maxBytes} bytes`,
    );
  }
  return { model, analysis: analyzeModel(model) };
}

function decodeOrExplain(bytes: Uint8Array): OnnxModel {
  let model: OnnxModel;
  try {
    model = decodeModel(bytes);
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
  return model;
}

function checkHeader(model: OnnxModel): void {
  const graph = model.graph as GraphProto;
  if ((graph.node?.length ?? 0) === 0 && (graph.output?.length ?? 0) === 0) {
    throw new ModelValidationError(
      'empty-model',
      'the model graph has no nodes and no outputs: there is nothing to run',
    );
  }
  const ir = model.ir_version;
  if (ir === undefined) {
    throw new ModelValidationError(
      'unsupported-ir-version',
      'the model has no ir_version; every ONNX model must declare one',
    );
  }
  if (typeof ir !== 'number' || ir < 1 || ir > MAX_IR_VERSION) {
    throw new ModelValidationError(
      'unsupported-ir-version',
      `the model declares IR version ${ir}; the bundled onnxruntime supports IR versions 1 to ${MAX_IR_VERSION}` +
        (Number(ir) > MAX_IR_VERSION ? ': export it with an older ONNX release' : ''),
    );
  }
  const opsets = model.opset_import ?? [];
  if (opsets.length === 0) {
    throw new ModelValidationError('missing-opset-import', 'the model imports no operator set (opset_import is empty)');
  }
  for (const { domain, version } of opsets) {
    const d = normalizeDomain(domain);
    const max = MAX_OPSET_BY_DOMAIN[d];
    if (typeof version !== 'number' || version < 1) {
      throw new ModelValidationError(
        'unsupported-opset',
        `opset_import for domain '${d}' has invalid version ${version}`,
      );
    }
    if (max !== undefined && version > max) {
      throw new ModelValidationError(
        'unsupported-opset',
        `the model uses opset ${version} of domain '${d}'; the bundled onnxruntime supports up to opset ${max}`,
      );
    }
    if (d === 'ai.onnx' && version < MIN_DEFAULT_OPSET) {
      throw new ModelValidationError(
        'unsupported-opset',
        `the model uses ONNX opset ${version}; onnxruntime only supports opset ${MIN_DEFAULT_OPSET} and later: ` +
          `convert it (e.g. with onnx.version_converter) to a newer opset`,
      );
    }
  }
}

/** Every node's domain must be imported, unless the node calls a function defined in the model. */
function checkOperatorDomains(model: OnnxModel, graph: GraphProto): void {
  const imported = new Set((model.opset_import ?? []).map((o) => normalizeDomain(o.domain)));
  const localFunctions = new Set((model.functions ?? []).map((f) => `${normalizeDomain(f.domain)}:${f.name}`));
  forEachNode(graph, (node, index, _g, location) => {
    const d = normalizeDomain(node.domain);
    if (imported.has(d) || localFunctions.has(`${d}:${node.op_type}`)) return;
    throw new ModelValidationError(
      'missing-opset-import',
      `node ${nodeLabel(node, index)} in ${location} uses operator domain '${d}', which the model does not import in opset_import`,
    );
  });
}

/**
 * Checks one graph and, recursively, its subgraphs. `outer` holds the names visible from enclosing graphs.
 * Returns the names this graph (or a graph nested in it) reads from outer scope: for the enclosing graph,
 * those are inputs of the node that owns the subgraph, which matters for cycle detection.
 */
function checkGraph(graph: GraphProto, outer: ReadonlySet<string>, location: GraphLocation): Set<string> {
  const definedBy = new Map<string, string>();
  const define = (name: string, what: string, allowInputOverride = false): void => {
    const previous = definedBy.get(name);
    if (previous !== undefined && !(allowInputOverride && previous === 'a graph input')) {
      throw new ModelValidationError(
        'duplicate-name',
        `tensor '${name}' in ${location} is defined twice: by ${previous} and by ${what}`,
      );
    }
    definedBy.set(name, what);
  };
  for (const input of graph.input ?? []) define(input.name ?? '', 'a graph input');
  // Before IR 4 initializers were also listed as graph inputs (the input then has a default): not a duplicate.
  for (const init of graph.initializer ?? []) define(init.name ?? '', `initializer '${init.name}'`, true);
  for (const sparse of graph.sparse_initializer ?? [])
    define(sparse.values?.name ?? '', `sparse initializer '${sparse.values?.name}'`, true);
  const nodes = graph.node ?? [];
  nodes.forEach((node, index) => {
    for (const out of node.output ?? []) if (out !== '') define(out, `node ${nodeLabel(node, index)}`);
  });

  const visibleToSubgraphs = new Set([...outer, ...definedBy.keys()]);
  const freeNames = new Set<string>();
  const dependencies: string[][] = nodes.map((node, index) => {
    const deps: string[] = [];
    for (const input of node.input ?? []) {
      if (input === '') continue; // an omitted optional input
      if (!definedBy.has(input) && !outer.has(input)) {
        throw new ModelValidationError(
          'dangling-input',
          `node ${nodeLabel(node, index)} in ${location} reads tensor '${input}', which no node, initializer or graph input produces`,
        );
      }
      deps.push(input);
    }
    for (const sub of subgraphsOf(node)) {
      const subLocation = subgraphLocation(location, node, index, sub.attribute);
      deps.push(...checkGraph(sub.graph, visibleToSubgraphs, subLocation));
    }
    for (const d of deps) if (!definedBy.has(d)) freeNames.add(d);
    return deps;
  });

  for (const output of graph.output ?? []) {
    const name = output.name ?? '';
    if (!definedBy.has(name) && !outer.has(name)) {
      throw new ModelValidationError(
        'dangling-output',
        `graph output '${name}' of ${location} is not produced by any node, initializer or input`,
      );
    }
  }
  checkAcyclic(nodes, dependencies, location);
  return freeNames;
}

/** Kahn's algorithm over producer → consumer edges; nodes left over sit on or behind a cycle. */
function checkAcyclic(nodes: NonNullable<GraphProto['node']>, dependencies: string[][], location: GraphLocation): void {
  const producer = new Map<string, number>();
  nodes.forEach((node, i) => {
    for (const o of node.output ?? []) if (o !== '') producer.set(o, i);
  });
  const consumers: number[][] = nodes.map(() => []);
  const pending = nodes.map(() => 0);
  dependencies.forEach((deps, i) => {
    for (const p of new Set(deps.map((d) => producer.get(d)).filter((p): p is number => p !== undefined))) {
      consumers[p].push(i);
      pending[i]++;
    }
  });
  const ready = pending.flatMap((n, i) => (n === 0 ? [i] : []));
  let done = 0;
  while (ready.length > 0) {
    const i = ready.pop() as number;
    done++;
    for (const c of consumers[i]) if (--pending[c] === 0) ready.push(c);
  }
  if (done === nodes.length) return;

  // Walk back along unresolved inputs from a stuck node until a node repeats: that loop is the cycle.
  const stuck = (i: number): number =>
    dependencies[i].map((d) => producer.get(d)).find((p): p is number => p !== undefined && pending[p] > 0) as number;
  const seenAt = new Map<number, number>();
  const path: number[] = [];
  let current = pending.findIndex((n) => n > 0);
  while (!seenAt.has(current)) {
    seenAt.set(current, path.length);
    path.push(current);
    current = stuck(current);
  }
  const loop = path.slice(seenAt.get(current)).reverse();
  // Start at the node that comes first in the file, so the message reads in the model's own order.
  const first = loop.indexOf(Math.min(...loop));
  const cycle = [...loop.slice(first), ...loop.slice(0, first)];
  const names = [...cycle, cycle[0]].map((i) => nodeLabel(nodes[i], i)).join(' → ');
  throw new ModelValidationError(
    'cycle',
    `the nodes of ${location} form a cycle: ${names}; an ONNX graph must be acyclic`,
  );
}

/** Checks every stored tensor (initializers and node attributes, in all graphs); returns declared external bytes. */
function checkTensors(graph: GraphProto): number {
  let externalBytes = 0;
  const check = (t: TensorProto, what: string): void => {
    externalBytes += checkTensor(t, what);
  };
  forEachGraph(graph, (g, location) => {
    for (const init of g.initializer ?? []) check(init, `initializer '${init.name}' in ${location}`);
    for (const sparse of g.sparse_initializer ?? []) {
      if (sparse.values) check(sparse.values, `sparse initializer '${sparse.values.name}' (values) in ${location}`);
      if (sparse.indices) check(sparse.indices, `sparse initializer '${sparse.values?.name}' (indices) in ${location}`);
    }
    (g.node ?? []).forEach((node, index) => {
      for (const { attribute, tensor } of attributeTensors(node)) {
        check(tensor, `tensor attribute '${attribute.name}' of node ${nodeLabel(node, index)} in ${location}`);
      }
    });
  });
  return externalBytes;
}

/** Which typed field holds a tensor's values when raw_data is not used. */
function typedField(dataType: number): { field: keyof TensorProto; perElement: number } {
  switch (dataType) {
    case TensorDataType.FLOAT:
      return { field: 'float_data', perElement: 1 };
    case TensorDataType.COMPLEX64:
      return { field: 'float_data', perElement: 2 };
    case TensorDataType.DOUBLE:
      return { field: 'double_data', perElement: 1 };
    case TensorDataType.COMPLEX128:
      return { field: 'double_data', perElement: 2 };
    case TensorDataType.INT64:
      return { field: 'int64_data', perElement: 1 };
    case TensorDataType.UINT32:
    case TensorDataType.UINT64:
      return { field: 'uint64_data', perElement: 1 };
    case TensorDataType.STRING:
      return { field: 'string_data', perElement: 1 };
    default:
      return { field: 'int32_data', perElement: 1 }; // int8/16/32, uint8/16, bool, 16- and 8-bit floats, sub-byte types
  }
}

/** Entry counts a typed field may hold for `count` elements. Sub-byte types are packed by most writers, not all. */
function acceptedEntryCounts(dataType: number, count: number, perElement: number): number[] {
  const bits = bitsPerElement(dataType);
  if (bits !== undefined && bits < 8) return [count, Math.ceil((count * bits) / 8), Math.ceil((count * bits) / 32)];
  return [count * perElement];
}

const VALUE_FIELDS = ['float_data', 'int32_data', 'string_data', 'int64_data', 'double_data', 'uint64_data'] as const;

function checkTensor(t: TensorProto, what: string): number {
  const dt = t.data_type ?? TensorDataType.UNDEFINED;
  if (TensorDataType[dt] === undefined || dt === TensorDataType.UNDEFINED) {
    throw new ModelValidationError(
      'bad-data-type',
      `${what} has data type ${dt}, which is not an ONNX tensor data type`,
    );
  }
  for (const d of t.dims ?? []) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} has an invalid dimension ${d} in dims [${(t.dims ?? []).join(', ')}]`,
      );
    }
  }
  const count = elementCount(t.dims);
  if (!Number.isSafeInteger(count)) {
    throw new ModelValidationError(
      'initializer-size-mismatch',
      `${what} has dims [${(t.dims ?? []).join(', ')}]: too many elements`,
    );
  }
  const shape = `dims [${(t.dims ?? []).join(', ')}] (${count} ${dataTypeName(dt)} elements)`;

  if (isExternal(t)) return checkExternalData(t, what, count, shape);
  if (t.segment) return 0; // a chunk of a larger tensor: its size is the segment's, not the dims'

  if (t.raw_data && t.raw_data.length > 0) {
    const expected = rawByteLength(dt, count);
    if (expected === undefined) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} is a ${dataTypeName(dt)} tensor stored in raw_data, which only fixed-width types may use`,
      );
    }
    if (t.raw_data.length !== expected) {
      throw new ModelValidationError(
        'initializer-size-mismatch',
        `${what} has ${shape}, which take ${expected} bytes, but its raw_data holds ${t.raw_data.length} bytes`,
      );
    }
    return 0;
  }
  const spec = typedField(dt);
  const actual = (t[spec.field] as unknown[] | undefined)?.length ?? 0;
  const accepted = acceptedEntryCounts(dt, count, spec.perElement);
  const expected = accepted[0];
  const ok = accepted.includes(actual);
  if (!ok) {
    const elsewhere = VALUE_FIELDS.find((f) => f !== spec.field && ((t[f] as unknown[] | undefined)?.length ?? 0) > 0);
    throw new ModelValidationError(
      'initializer-size-mismatch',
      `${what} has ${shape}, but ` +
        (actual === 0 && elsewhere
          ? `its values are in ${elsewhere}, and a ${dataTypeName(dt)} tensor keeps them in ${String(spec.field)} or raw_data`
          : `${String(spec.field)} holds ${actual} entries (expected ${expected})`),
    );
  }
  return 0;
}

/** External data must stay inside the upload: a relative path with no '..' step, and sane offset/length. */
function checkExternalData(t: TensorProto, what: string, count: number, shape: string): number {
  const location = externalDataEntry(t, 'location');
  if (!location) {
    throw new ModelValidationError('external-data-path', `${what} keeps its data externally but names no location`);
  }
  const absolute =
    location.startsWith('/') || location.startsWith('\\') || /^[A-Za-z]:/.test(location) || location.startsWith('~');
  const escapes = location.split(/[\\/]/).some((segment) => segment === '..');
  if (absolute || escapes || location.includes('\0')) {
    throw new ModelValidationError(
      'external-data-path',
      `${what} reads external data from '${location}', outside the model's folder: external data locations must be ` +
        `relative paths without '..'`,
    );
  }
  const numberEntry = (key: string): number | undefined => {
    const raw = externalDataEntry(t, key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) {
      throw new ModelValidationError(
        'external-data-path',
        `${what} has external data ${key} '${raw}', which is not a byte count`,
      );
    }
    return n;
  };
  numberEntry('offset');
  const length = numberEntry('length');
  const expected = rawByteLength(t.data_type ?? 0, count);
  if (length !== undefined && expected !== undefined && length !== expected) {
    throw new ModelValidationError(
      'initializer-size-mismatch',
      `${what} has ${shape}, which take ${expected} bytes, but its external data length is ${length} bytes`,
    );
  }
  return length ?? expected ?? 0;
}
