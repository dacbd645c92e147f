/**
 * The subset of onnx.proto (ONNX IR) that thunderpac writes and reads: models, graphs, nodes,
 * attributes, tensors and value infos. Field numbers are those of onnx/onnx.proto; everything
 * we do not use is left out, and protobuf readers skip unknown fields, so models with more in
 * them still decode.
 *
 * Why a schema here rather than the `onnx-proto` package: that package pins protobufjs 6 and
 * ships all of onnx.proto; ours is thirty lines we can read, and the generator's output bytes
 * depend only on it and protobufjs' field-order encoding (deterministic: no maps, no
 * timestamps, fields written in field-number order).
 */

import protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message StringStringEntryProto { string key = 1; string value = 2; }
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4;
  repeated int32 int32_data = 5;
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7;
  string name = 8;
  bytes raw_data = 9;
  repeated double double_data = 10;
}
message AttributeProto {
  string name = 1;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  int32 type = 20;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
  string domain = 7;
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; }
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message ModelProto {
  int64 ir_version = 1;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
const ModelType = root.lookupType('onnx.ModelProto');

/** onnx.TensorProto.DataType values used here. */
export const ONNX_DTYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  DOUBLE: 11,
} as const;
/** onnx.AttributeProto.AttributeType values. */
export const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export interface TensorProto {
  dims: number[];
  data_type: number;
  name: string;
  raw_data?: Uint8Array;
  float_data?: number[];
  int64_data?: number[];
}
export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}
export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain?: string;
  attribute: AttributeProto[];
}
export interface ValueInfoProto {
  name: string;
  type: {
    tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } };
  };
}
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  doc_string?: string;
}
export interface ModelProto {
  ir_version: number;
  producer_name: string;
  producer_version: string;
  domain?: string;
  model_version: number;
  doc_string?: string;
  graph: GraphProto;
  opset_import: { domain: string; version: number }[];
  metadata_props?: { key: string; value: string }[];
}

export function encodeModel(model: ModelProto): Uint8Array {
  const err = ModelType.verify(model);
  if (err) throw new Error(`invalid ModelProto: ${err}`);
  return ModelType.encode(ModelType.fromObject(model)).finish();
}

/** Decode with int64s as JS numbers (every int64 in our models fits in 2^53). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const msg = ModelType.decode(bytes);
  return ModelType.toObject(msg, {
    longs: Number,
    bytes: Uint8Array,
    arrays: true,
    defaults: true,
    oneofs: false,
  }) as ModelProto;
}

// ---------------------------------------------------------------- tensor helpers

export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorProto {
  const raw = new Uint8Array(data.byteLength);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return { name, dims: [...dims], data_type: ONNX_DTYPE.FLOAT, raw_data: raw };
}

/** The float32 contents of an initializer, from raw_data (little-endian) or float_data. */
export function tensorFloats(t: TensorProto): Float32Array {
  if (t.data_type !== ONNX_DTYPE.FLOAT)
    throw new Error(`tensor ${t.name}: not float32 (type ${t.data_type})`);
  if (t.raw_data && t.raw_data.byteLength > 0) {
    const view = new DataView(t.raw_data.buffer, t.raw_data.byteOffset, t.raw_data.byteLength);
    const out = new Float32Array(t.raw_data.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  return Float32Array.from(t.float_data ?? []);
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}

export function attrStrings(node: NodeProto, name: string): string[] {
  return (attr(node, name)?.strings ?? []).map((s) => new TextDecoder().decode(s));
}
