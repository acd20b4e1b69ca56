/** Small constructors for hand-built ONNX graphs (generated models, test fixtures, graph transforms). */
import {
  type AttributeProto,
  AttributeType,
  type GraphProto,
  type Int64,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './model';

/** A tensor input/output declaration. Shape entries: number = fixed, string = symbolic, null = unknown. */
export function tensorValueInfo(
  name: string,
  elemType: number,
  shape: ReadonlyArray<number | string | null>,
): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: {
          dim: shape.map((d) =>
            typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {},
          ),
        },
      },
    },
  };
}

export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  opts: { name?: string; domain?: string; attributes?: AttributeProto[] } = {},
): NodeProto {
  const node: NodeProto = { op_type: opType, input: inputs, output: outputs };
  if (opts.name !== undefined) node.name = opts.name;
  if (opts.domain !== undefined) node.domain = opts.domain;
  if (opts.attributes?.length) node.attribute = opts.attributes;
  return node;
}

/** Attribute constructors; each sets `type`, which the IR requires since version 2. */
export const attr = {
  int: (name: string, i: Int64): AttributeProto => ({ name, type: AttributeType.INT, i }),
  ints: (name: string, ints: Int64[]): AttributeProto => ({ name, type: AttributeType.INTS, ints }),
  float: (name: string, f: number): AttributeProto => ({ name, type: AttributeType.FLOAT, f }),
  floats: (name: string, floats: number[]): AttributeProto => ({ name, type: AttributeType.FLOATS, floats }),
  string: (name: string, s: string): AttributeProto => ({
    name,
    type: AttributeType.STRING,
    s: new TextEncoder().encode(s),
  }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: AttributeType.TENSOR, t }),
  graph: (name: string, g: GraphProto): AttributeProto => ({ name, type: AttributeType.GRAPH, g }),
};

/** A `Cast` of `input` to the element type `to` (a TensorDataType). */
export function castNode(input: string, output: string, to: number, name: string): NodeProto {
  return makeNode('Cast', [input], [output], { name, attributes: [attr.int('to', to)] });
}

/** A `Constant` node holding a tensor: how many exporters store weights instead of initializers. */
export function constantNode(output: string, value: TensorProto, name = `${output}_constant`): NodeProto {
  return makeNode('Constant', [], [output], { name, attributes: [attr.tensor('value', { ...value, name: output })] });
}

/**
 * The IR version the ONNX release that introduced `opset` wrote; newer IRs are not needed to express it
 * and older runtimes accept older IRs.
 */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}
