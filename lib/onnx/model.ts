/**
 * ONNX models as plain TypeScript objects: decode a .onnx file, change it, encode it again.
 *
 * Field names are the ONNX spec's (snake_case), so the ONNX IR docs read directly onto this code.
 * After decodeModel, repeated fields are always arrays (possibly empty) and absent optional fields are
 * undefined. The types mark everything optional so that hand-built models stay short to write.
 * 64-bit integer fields are numbers; value fields that can hold INT64_MAX-style sentinels (attribute
 * `i`/`ints`, `int64_data`, `uint64_data`) are `number | bigint`: bigint only where a number would be inexact.
 */
import { ModelProtoType, UNKNOWN_FIELDS } from './schema';
import type { TensorDataLocation } from './tensor';

export {
  float32Tensor,
  int64Tensor,
  TensorDataLocation,
  TensorDataType,
  tensorToBigInt64,
  tensorToFloat32,
} from './tensor';

export type Int64 = number | bigint;

export interface ProtoMessage {
  /** Wire bytes of fields this schema does not know; written back unchanged by encodeModel. */
  [UNKNOWN_FIELDS]?: Uint8Array[];
}

export enum AttributeType {
  UNDEFINED = 0,
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
  TENSORS = 9,
  GRAPHS = 10,
  SPARSE_TENSOR = 11,
  SPARSE_TENSORS = 12,
  TYPE_PROTO = 13,
  TYPE_PROTOS = 14,
}

export interface StringStringEntry extends ProtoMessage {
  key?: string;
  value?: string;
}

export interface OperatorSetId extends ProtoMessage {
  /** '' (or 'ai.onnx') is the default ONNX domain. */
  domain?: string;
  version?: number;
}

export interface TensorProto extends ProtoMessage {
  dims?: number[];
  /** A TensorDataType value. */
  data_type?: number;
  segment?: { begin?: Int64; end?: Int64 } & ProtoMessage;
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: Int64[];
  name?: string;
  raw_data?: Uint8Array;
  double_data?: number[];
  uint64_data?: Int64[];
  doc_string?: string;
  /** Keys: location (relative path), offset, length, checksum. */
  external_data?: StringStringEntry[];
  data_location?: TensorDataLocation;
  metadata_props?: StringStringEntry[];
}

export interface SparseTensorProto extends ProtoMessage {
  values?: TensorProto;
  indices?: TensorProto;
  dims?: number[];
}

export interface TensorShapeDimension extends ProtoMessage {
  /** At most one of dim_value / dim_param; neither means an unknown dimension. */
  dim_value?: number;
  dim_param?: string;
  denotation?: string;
}

export interface TensorShapeProto extends ProtoMessage {
  dim?: TensorShapeDimension[];
}

export interface TypeProto extends ProtoMessage {
  /** One of the following kinds. */
  tensor_type?: { elem_type?: number; shape?: TensorShapeProto } & ProtoMessage;
  sequence_type?: { elem_type?: TypeProto } & ProtoMessage;
  map_type?: { key_type?: number; value_type?: TypeProto } & ProtoMessage;
  optional_type?: { elem_type?: TypeProto } & ProtoMessage;
  sparse_tensor_type?: { elem_type?: number; shape?: TensorShapeProto } & ProtoMessage;
  opaque_type?: { domain?: string; name?: string } & ProtoMessage;
  denotation?: string;
}

export interface ValueInfoProto extends ProtoMessage {
  name?: string;
  type?: TypeProto;
  doc_string?: string;
  metadata_props?: StringStringEntry[];
}

export interface AttributeProto extends ProtoMessage {
  name?: string;
  type?: AttributeType;
  ref_attr_name?: string;
  doc_string?: string;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparse_tensor?: SparseTensorProto;
  tp?: TypeProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparse_tensors?: SparseTensorProto[];
  type_protos?: TypeProto[];
}

export interface NodeProto extends ProtoMessage {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  overload?: string;
  attribute?: AttributeProto[];
  doc_string?: string;
  metadata_props?: StringStringEntry[];
  /** Multi-device sharding annotations (IR 11); kept as decoded. */
  device_configurations?: ProtoMessage[];
}

export interface TensorAnnotation extends ProtoMessage {
  tensor_name?: string;
  quant_parameter_tensor_names?: StringStringEntry[];
}

export interface GraphProto extends ProtoMessage {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparse_initializer?: SparseTensorProto[];
  doc_string?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
  quantization_annotation?: TensorAnnotation[];
  metadata_props?: StringStringEntry[];
}

export interface FunctionProto extends ProtoMessage {
  name?: string;
  domain?: string;
  overload?: string;
  input?: string[];
  output?: string[];
  attribute?: string[];
  attribute_proto?: AttributeProto[];
  node?: NodeProto[];
  doc_string?: string;
  opset_import?: OperatorSetId[];
  value_info?: ValueInfoProto[];
  metadata_props?: StringStringEntry[];
}

export interface TrainingInfoProto extends ProtoMessage {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initialization_binding?: StringStringEntry[];
  update_binding?: StringStringEntry[];
}

/** ModelProto. */
export interface OnnxModel extends ProtoMessage {
  ir_version?: number;
  opset_import?: OperatorSetId[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: GraphProto;
  metadata_props?: StringStringEntry[];
  training_info?: TrainingInfoProto[];
  functions?: FunctionProto[];
  /** Device configurations for multi-device execution (IR 11); kept as decoded. */
  configuration?: ProtoMessage[];
}

/**
 * Decodes ModelProto bytes. Throws protobufjs' error on malformed wire data; note that protobuf decodes many
 * non-ONNX byte strings without complaint, so use validateModel for untrusted input.
 * Byte fields (raw_data, ...) are views into `bytes`, not copies: do not reuse that buffer while the model lives.
 */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  return ModelProtoType.decode(bytes) as unknown as OnnxModel;
}

export function encodeModel(model: OnnxModel): Uint8Array {
  return ModelProtoType.encode(model as unknown as Record<string, unknown>).finish();
}
