/** Re-exports of the ONNX protobuf schema (onnx-buf, ONNX 1.20) used by the engine. */
export {
  ModelProtoSchema,
  GraphProtoSchema,
  TensorProtoSchema,
  NodeProtoSchema,
  AttributeProtoSchema,
  ValueInfoProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataType as DataType,
  TensorProto_DataLocation as DataLocation,
  AttributeProto_AttributeType as AttributeType,
} from 'onnx-buf';
export type {
  ModelProto,
  GraphProto,
  TensorProto,
  NodeProto,
  AttributeProto,
  ValueInfoProto,
} from 'onnx-buf';
