/** The trained student as ONNX: the teacher's own graph (same node types, input/output names, opset, metadata) with the student's weights and widths. */
import { decodeModel, encodeModel } from '../../../onnx/model';
import { setFloat32Values } from '../../../onnx/tensor';
import { detectMlp } from './detect';
import type { StudentLayer } from './training';

/** The teacher's graph with the student's weights and widths. */
export function exportStudent(teacherBytes: Uint8Array, student: StudentLayer[], note: string): Uint8Array {
  const model = decodeModel(teacherBytes);
  const mlp = detectMlp(model);
  if (typeof mlp === 'string') throw new Error(`the teacher is not an MLP: ${mlp}`);
  const changed = new Set<string>();
  mlp.layers.forEach((layer, l) => {
    const s = student[l];
    if (layer.transB) {
      const t = new Float32Array(s.w.length);
      for (let i = 0; i < s.inDim; i++) for (let j = 0; j < s.outDim; j++) t[j * s.inDim + i] = s.w[i * s.outDim + j];
      setFloat32Values(layer.weight.tensor, t, [s.outDim, s.inDim]);
    } else {
      setFloat32Values(layer.weight.tensor, s.w, [s.inDim, s.outDim]);
    }
    if (layer.bias) setFloat32Values(layer.bias.tensor, s.b, [s.outDim]);
    if (layer.node.op_type === 'Gemm') {
      // alpha and beta were folded into the trained weights.
      layer.node.attribute = (layer.node.attribute ?? []).filter((a) => a.name !== 'alpha' && a.name !== 'beta');
    }
    for (const n of [layer.node, layer.add, layer.activation?.node]) for (const o of n?.output ?? []) changed.add(o);
  });
  const graph = model.graph!;
  // value_info of the hidden tensors described the teacher's widths.
  graph.value_info = (graph.value_info ?? []).filter((v) => !changed.has(v.name ?? '') || v.name === mlp.output);
  for (const w of [...mlp.layers.map((l) => l.weight), ...mlp.layers.flatMap((l) => (l.bias ? [l.bias] : []))]) {
    graph.value_info = graph.value_info.filter((v) => v.name !== w.name);
  }
  model.metadata_props = [
    ...(model.metadata_props ?? []).filter((p) => p.key !== 'ferry.distilled'),
    { key: 'ferry.distilled', value: note },
  ];
  return encodeModel(model);
}
