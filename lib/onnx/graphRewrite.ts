/**
 * Helpers for graph transforms: fresh names, finding the constant tensor behind a name (initializer or
 * Constant node, through the scopes of nested graphs), counting and renaming uses (including the implicit
 * uses subgraphs make of outer values), adding initializers and rewriting Constant nodes, removing weights nobody
 * reads, and adding opset imports.
 */
import { attr } from './builders';
import { forEachGraph, isDefaultDomain, subgraphsOf } from './graph';
import type { GraphProto, NodeProto, OnnxModel, TensorProto } from './model';
import { isExternal, TensorDataType, tensorToFloat32 } from './tensor';

/** Hands out names no value, node or graph of the model uses yet. */
export class NameAllocator {
  private readonly used = new Set<string>();

  constructor(model: OnnxModel) {
    forEachGraph(model.graph ?? {}, (g) => {
      for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.value_info ?? [])])
        if (v.name) this.used.add(v.name);
      for (const t of g.initializer ?? []) if (t.name) this.used.add(t.name);
      for (const s of g.sparse_initializer ?? []) if (s.values?.name) this.used.add(s.values.name);
      for (const n of g.node ?? []) {
        if (n.name) this.used.add(n.name);
        for (const o of n.output ?? []) if (o) this.used.add(o);
        for (const i of n.input ?? []) if (i) this.used.add(i);
      }
    });
  }

  /** `base` when it is free, else `base_1`, `base_2`, ...; the returned name is reserved. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/** A constant tensor a node input refers to, and where it is defined. */
export interface ConstantWeight {
  name: string;
  tensor: TensorProto;
  /** The graph that defines it (an outer graph when a subgraph reads it). */
  graph: GraphProto;
  source: 'initializer' | 'constant-node';
  /** The Constant node, for source 'constant-node'. */
  node?: NodeProto;
}

export type ConstantLookup = { constant: true; weight: ConstantWeight } | { constant: false; reason: string };

/**
 * What names mean inside one graph, with a link to the enclosing graph's scope (subgraphs read outer values
 * by name). Built once per graph; rebuild after structural changes.
 */
export class GraphScope {
  private readonly initializers = new Map<string, TensorProto>();
  private readonly producers = new Map<string, NodeProto>();
  private readonly inputs = new Set<string>();

  constructor(
    readonly graph: GraphProto,
    readonly parent: GraphScope | undefined,
    /** The model's IR version: before IR 4 every initializer was also listed as a graph input. */
    readonly irVersion: number,
  ) {
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const v of graph.input ?? []) if (v.name) this.inputs.add(v.name);
    for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) this.producers.set(o, n);
  }

  defines(name: string): boolean {
    return this.initializers.has(name) || this.inputs.has(name) || this.producers.has(name);
  }

  producerOf(name: string): NodeProto | undefined {
    return this.producers.get(name) ?? this.parent?.producerOf(name);
  }

  /** The constant tensor `name` holds, or why it is not a constant. */
  lookupConstant(name: string): ConstantLookup {
    const init = this.initializers.get(name);
    if (init) {
      const isMainGraph = this.parent === undefined;
      if (this.inputs.has(name) && !(isMainGraph && this.irVersion < 4)) {
        return {
          constant: false,
          reason: `'${name}' is a graph input with a default value, which a caller may override`,
        };
      }
      return { constant: true, weight: { name, tensor: init, graph: this.graph, source: 'initializer' } };
    }
    if (this.inputs.has(name)) return { constant: false, reason: `'${name}' is a graph input` };
    const producer = this.producers.get(name);
    if (producer) {
      if (producer.op_type === 'Constant' && isDefaultDomain(producer.domain)) {
        const value = producer.attribute?.find((a) => a.name === 'value' && a.t);
        if (value?.t)
          return {
            constant: true,
            weight: { name, tensor: value.t, graph: this.graph, source: 'constant-node', node: producer },
          };
        return { constant: false, reason: `'${name}' comes from a Constant node without a dense tensor value` };
      }
      return { constant: false, reason: `'${name}' is computed at run time (by ${producer.op_type})` };
    }
    if (this.parent) return this.parent.lookupConstant(name);
    return { constant: false, reason: `'${name}' is not defined` };
  }
}

/** Names a graph defines itself (inputs, initializers, node outputs): these shadow outer values of the same name. */
export function definesName(graph: GraphProto, name: string): boolean {
  if ((graph.input ?? []).some((v) => v.name === name)) return true;
  if ((graph.initializer ?? []).some((t) => t.name === name)) return true;
  return (graph.node ?? []).some((n) => (n.output ?? []).includes(name));
}

/** How many times `name` is read in `graph`: node inputs, graph outputs, and reads from nested subgraphs that do not shadow it. */
export function countUses(graph: GraphProto, name: string): number {
  let uses = (graph.output ?? []).filter((o) => o.name === name).length;
  for (const node of graph.node ?? []) {
    uses += (node.input ?? []).filter((i) => i === name).length;
    for (const sub of subgraphsOf(node)) if (!definesName(sub.graph, name)) uses += countUses(sub.graph, name);
  }
  return uses;
}

/** Nodes of `graph` that read `name` directly (not through a subgraph). */
export function consumersOf(graph: GraphProto, name: string): NodeProto[] {
  return (graph.node ?? []).filter((n) => (n.input ?? []).includes(name));
}

/** Names a node's subgraphs read from enclosing scopes (the node's implicit inputs). */
export function implicitInputs(node: NodeProto): Set<string> {
  const out = new Set<string>();
  for (const sub of subgraphsOf(node)) collectOuterReads(sub.graph, new Set(), out);
  return out;
}

function collectOuterReads(graph: GraphProto, enclosingLocal: Set<string>, out: Set<string>): void {
  const local = new Set(enclosingLocal);
  for (const v of graph.input ?? []) if (v.name) local.add(v.name);
  for (const t of graph.initializer ?? []) if (t.name) local.add(t.name);
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) local.add(o);
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) if (i && !local.has(i)) out.add(i);
    for (const sub of subgraphsOf(n)) collectOuterReads(sub.graph, local, out);
  }
  for (const o of graph.output ?? []) if (o.name && !local.has(o.name)) out.add(o.name);
}

/** Renames reads of `from` inside a subgraph (and its nested subgraphs) that refer to the outer value, leaving shadowed ones alone. */
export function renameOuterReads(graph: GraphProto, from: string, to: string): void {
  if (definesName(graph, from)) return;
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map((i) => (i === from ? to : i));
    for (const sub of subgraphsOf(node)) renameOuterReads(sub.graph, from, to);
  }
  for (const o of graph.output ?? []) if (o.name === from) o.name = to;
}

/** Appends tensors to a graph's initializers (a graph may have none yet). */
export function addInitializers(graph: GraphProto, ...tensors: TensorProto[]): void {
  graph.initializer ??= [];
  graph.initializer.push(...tensors);
}

/** The float32 tensor a Constant node holds (value, value_float, value_floats), if it holds one in the model. */
export function constantFloatValue(
  node: NodeProto,
): { values: Float32Array; dims: number[]; tensor?: TensorProto } | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t && a.t.data_type === TensorDataType.FLOAT && !isExternal(a.t)) {
      return { values: tensorToFloat32(a.t), dims: (a.t.dims ?? []).map(Number), tensor: a.t };
    }
    if (a.name === 'value_float' && a.f !== undefined) return { values: Float32Array.of(a.f), dims: [] };
    if (a.name === 'value_floats')
      return { values: Float32Array.from(a.floats ?? []), dims: [(a.floats ?? []).length] };
  }
  return undefined;
}

/** Makes a Constant node hold `tensor`, in place of whatever value attribute it had. */
export function setConstantValue(node: NodeProto, tensor: TensorProto): void {
  node.attribute = [attr.tensor('value', tensor)];
}

/**
 * Deletes a constant weight once nothing reads it any more: the initializer (and its graph input entry and
 * value_info, if any) or the Constant node. Returns whether it was removed.
 */
export function removeIfUnused(weight: ConstantWeight): boolean {
  const g = weight.graph;
  if (countUses(g, weight.name) > 0) return false;
  if (weight.source === 'initializer') {
    g.initializer = (g.initializer ?? []).filter((t) => t !== weight.tensor);
    g.input = (g.input ?? []).filter((v) => v.name !== weight.name);
  } else {
    g.node = (g.node ?? []).filter((n) => n !== weight.node);
  }
  g.value_info = (g.value_info ?? []).filter((v) => v.name !== weight.name);
  return true;
}

/** Imports `domain` at `version` unless the model already imports it (at any version). Returns whether it added one. */
export function ensureOpsetImport(model: OnnxModel, domain: string, version: number): boolean {
  model.opset_import ??= [];
  const imports = model.opset_import;
  const wanted = isDefaultDomain(domain) ? '' : domain;
  if (imports.some((o) => (isDefaultDomain(o.domain) ? '' : o.domain) === wanted)) return false;
  imports.push({ domain, version });
  return true;
}

/** The default-domain opset the model imports (0 when it imports none). */
export function defaultOpsetVersion(model: OnnxModel): number {
  return Number((model.opset_import ?? []).find((o) => isDefaultDomain(o.domain))?.version ?? 0);
}
