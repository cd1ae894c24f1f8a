import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { DataLocation, ModelProtoSchema, type ModelProto, type TensorProto } from './schema';
import { normalizeToRaw } from './tensor';
import type { ExternalDataContext } from './externalData';
import { OptinError } from '../errors';

/** An ONNX model held in memory, with where it came from. */
export interface OnnxModel {
  /** Absolute path of the file it was read from (or a label for in-memory models). */
  readonly path: string;
  /** Decoded protobuf. Tensor raw_data fields are views into the file buffer. */
  readonly proto: ModelProto;
  /** Resolves external-data locations relative to the model's folder. */
  readonly ext: ExternalDataContext;
  /** True when at least one initializer lives in a side file. */
  readonly usesExternalData: boolean;
  /** Size of the .onnx file itself in bytes. */
  readonly fileBytes: number;
}

/**
 * Read and decode an .onnx file. External data is not read here; tensors load it on demand.
 * @throws OptinError('io'|'corrupt') with the file name and the reason.
 */
export function loadModel(file: string): OnnxModel {
  const abs = path.resolve(file);
  let bytes: Buffer;
  try {
    const st = fs.statSync(abs);
    if (st.isDirectory()) throw new OptinError('io', `${abs} is a folder, not an .onnx file`);
    bytes = fs.readFileSync(abs);
  } catch (e) {
    if (e instanceof OptinError) throw e;
    throw new OptinError('io', `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return decodeModel(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), abs);
}

/** Decode model bytes; `label` names the source in errors and anchors external data. */
export function decodeModel(bytes: Uint8Array, label: string): OnnxModel {
  if (bytes.byteLength === 0) throw new OptinError('corrupt', `${label} is empty (0 bytes); expected an ONNX model`);
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (e) {
    throw new OptinError(
      'corrupt',
      `${label} is not a readable ONNX protobuf (truncated or corrupt file: ${(e as Error).message})`,
    );
  }
  const g = proto.graph;
  if (!g || g.node.length === 0) {
    throw new OptinError('corrupt', `${label} decodes as protobuf but holds no ONNX graph; is it really an .onnx model?`);
  }
  if (proto.opsetImport.length === 0) {
    throw new OptinError('corrupt', `${label} has no opset_import; the file is truncated or was not written by an ONNX exporter`);
  }
  let usesExternalData = false;
  const visit = (t: TensorProto): void => {
    if (t.dataLocation === DataLocation.EXTERNAL) usesExternalData = true;
    else normalizeToRaw(t);
  };
  g.initializer.forEach(visit);
  for (const n of g.node) for (const a of n.attribute) if (a.t) visit(a.t);
  return {
    path: label,
    proto,
    ext: { baseDir: path.dirname(label), modelPath: label },
    usesExternalData,
    fileBytes: bytes.byteLength,
  };
}
