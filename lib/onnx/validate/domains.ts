/** Operator domains: each node's domain is imported, and is one the bundled onnxruntime has kernels for. */
import { forEachNode, nodeLabel, normalizeDomain } from '../graph';
import type { GraphProto, OnnxModel } from '../model';
import { RUNTIME_KERNEL_DOMAINS } from '../runtimeSupport';
import { ModelValidationError } from './errors';

/** A call of a function the model defines needs neither an import of a kernel library nor kernels. */
export function checkOperatorDomains(model: OnnxModel, graph: GraphProto): void {
  const imported = new Set((model.opset_import ?? []).map((o) => normalizeDomain(o.domain)));
  const localFunctions = new Set((model.functions ?? []).map((f) => `${normalizeDomain(f.domain)}:${f.name}`));
  forEachNode(graph, (node, index, _g, location) => {
    const d = normalizeDomain(node.domain);
    if (localFunctions.has(`${d}:${node.op_type}`)) return;
    if (!imported.has(d)) {
      throw new ModelValidationError(
        'missing-opset-import',
        `node ${nodeLabel(node, index)} in ${location} uses operator domain '${d}', which the model does not import in opset_import`,
      );
    }
    if (!RUNTIME_KERNEL_DOMAINS.has(d)) {
      throw new ModelValidationError(
        'custom-op-domain',
        `node ${nodeLabel(node, index)} in ${location} is a custom operator of domain '${d}': the bundled onnxruntime ` +
          `has kernels only for ${[...RUNTIME_KERNEL_DOMAINS].map((k) => `'${k}'`).join(', ')}, and Ferry loads no custom-op libraries`,
      );
    }
  });
}
