/** Graph traversal shared by validation, analysis and transforms: subgraphs, node labels, domains, attributes. */
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from './model';

/** '' and 'ai.onnx' both name the default ONNX operator domain. */
export function isDefaultDomain(domain: string | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

export function normalizeDomain(domain: string | undefined): string {
  return isDefaultDomain(domain) ? 'ai.onnx' : (domain as string);
}

/** Graphs a node carries in its attributes: If's branches, Loop/Scan bodies, custom ops' graphs. */
export function subgraphsOf(node: NodeProto): Array<{ attribute: string; graph: GraphProto }> {
  const out: Array<{ attribute: string; graph: GraphProto }> = [];
  for (const a of node.attribute ?? []) {
    if (a.g) out.push({ attribute: a.name ?? '', graph: a.g });
    for (const g of a.graphs ?? []) out.push({ attribute: a.name ?? '', graph: g });
  }
  return out;
}

/** Tensors a node carries in its attributes (Constant's `value`, ConstantOfShape's `value`, ...). */
export function attributeTensors(node: NodeProto): Array<{ attribute: AttributeProto; tensor: TensorProto }> {
  const out: Array<{ attribute: AttributeProto; tensor: TensorProto }> = [];
  for (const a of node.attribute ?? []) {
    if (a.t) out.push({ attribute: a, tensor: a.t });
    for (const t of a.tensors ?? []) out.push({ attribute: a, tensor: t });
    if (a.sparse_tensor?.values) out.push({ attribute: a, tensor: a.sparse_tensor.values });
  }
  return out;
}

/** How a message names a node: its name when it has one, else its position and op. */
export function nodeLabel(node: NodeProto, index: number): string {
  return node.name ? `'${node.name}' (${node.op_type})` : `#${index} (${node.op_type}, unnamed)`;
}

/** Where a graph sits, for messages: "the main graph" or "subgraph 'then_branch' of node 'If_0' (If)". */
export type GraphLocation = string;
export const MAIN_GRAPH: GraphLocation = 'the main graph';

export function subgraphLocation(
  parent: GraphLocation,
  node: NodeProto,
  index: number,
  attribute: string,
): GraphLocation {
  const own = `subgraph '${attribute}' of node ${nodeLabel(node, index)}`;
  return parent === MAIN_GRAPH ? own : `${own} in ${parent}`;
}

/** Visits every node of a graph and of its nested subgraphs, depth first, parents before children. */
export function forEachNode(
  graph: GraphProto,
  visit: (node: NodeProto, index: number, graph: GraphProto, location: GraphLocation) => void,
  location: GraphLocation = MAIN_GRAPH,
): void {
  (graph.node ?? []).forEach((node, index) => {
    visit(node, index, graph, location);
    for (const sub of subgraphsOf(node))
      forEachNode(sub.graph, visit, subgraphLocation(location, node, index, sub.attribute));
  });
}

/** Visits a graph and all graphs nested in it. */
export function forEachGraph(
  graph: GraphProto,
  visit: (graph: GraphProto, location: GraphLocation) => void,
  location: GraphLocation = MAIN_GRAPH,
): void {
  visit(graph, location);
  (graph.node ?? []).forEach((node, index) => {
    for (const sub of subgraphsOf(node))
      forEachGraph(sub.graph, visit, subgraphLocation(location, node, index, sub.attribute));
  });
}

export function findAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

// Attribute readers: the attribute's value, or `fallback` (the spec's default) when the node does not set it.

export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = findAttribute(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

export function floatAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = findAttribute(node, name);
  return a?.f !== undefined ? a.f : fallback;
}

export function intsAttribute(node: NodeProto, name: string): number[] | undefined {
  return findAttribute(node, name)?.ints?.map(Number);
}

export function stringAttribute(node: NodeProto, name: string): string | undefined {
  const s = findAttribute(node, name)?.s;
  return s ? new TextDecoder().decode(s) : undefined;
}
