/** Graph structure: each name defined once, every input produced, outputs produced, no cycles; through subgraphs. */
import { type GraphLocation, nodeLabel, subgraphLocation, subgraphsOf } from '../graph';
import type { GraphProto } from '../model';
import { ModelValidationError } from './errors';

/** The names visible from enclosing graphs (a chain as deep as the subgraph nesting, which the walk bounds). */
export interface NameScope {
  has(name: string): boolean;
}

export const NO_OUTER_SCOPE: NameScope = { has: () => false };

/**
 * Checks one graph and, recursively, its subgraphs. `outer` holds the names visible from enclosing graphs.
 * Returns the names this graph (or a graph nested in it) reads from outer scope: for the enclosing graph,
 * those are inputs of the node that owns the subgraph, which matters for cycle detection.
 */
export function checkGraph(graph: GraphProto, outer: NameScope, location: GraphLocation): Set<string> {
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

  // A chain of scopes, not a merged copy: copying per subgraph would cost names × subgraphs.
  const visibleToSubgraphs: NameScope = { has: (name) => definedBy.has(name) || outer.has(name) };
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
