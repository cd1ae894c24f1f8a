import * as fs from 'node:fs';
import * as path from 'node:path';
import { toBinary, create } from '@bufbuild/protobuf';
import {
  DataLocation,
  ModelProtoSchema,
  GraphProtoSchema,
  TensorProtoSchema,
  StringStringEntryProtoSchema,
  type TensorProto,
} from './schema';
import { tensorBytes } from './tensor';
import type { OnnxModel } from './model';
import { OptinError } from '../errors';
import { removeStaleTemps, tempPathFor } from '../util/temps';
import { writeError } from '../util/atomic';

/** Options for {@link saveModel}. */
export interface SaveOptions {
  /** Force external data on/off. Default: on when the input used it or the model exceeds 2 GB. */
  externalData?: boolean;
  /** Tensors smaller than this stay inline when writing external data (bytes, default 1024). */
  externalThreshold?: number;
}

const TWO_GB = 2 ** 31 - 1;
const TAG_GRAPH = (7 << 3) | 2;
const TAG_INITIALIZER = (5 << 3) | 2;
const TAG_RAW_DATA = (9 << 3) | 2;

interface Sink {
  write(chunk: Uint8Array): void;
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

interface PlannedTensor {
  head: Uint8Array;
  raw: Uint8Array | undefined;
  length: number;
}

/** Serialize a tensor without its raw_data, then append raw_data by hand (streamed later). */
function planTensor(t: TensorProto, raw: Uint8Array | undefined): PlannedTensor {
  const saved = t.rawData;
  t.rawData = new Uint8Array(0);
  let head: Uint8Array;
  try {
    head = toBinary(TensorProtoSchema, t);
  } finally {
    t.rawData = saved;
  }
  const rawLen = raw?.byteLength ?? 0;
  const length = head.byteLength + (rawLen > 0 ? 1 + varint(rawLen).byteLength + rawLen : 0);
  return { head, raw: rawLen > 0 ? raw : undefined, length };
}

/** Compute the total serialized size a model would have inline (approximate, for the 2 GB rule). */
function inlineSize(model: OnnxModel): number {
  let n = model.fileBytes;
  if (!model.usesExternalData) return n;
  for (const t of model.proto.graph!.initializer) {
    if (t.dataLocation === DataLocation.EXTERNAL) {
      const len = t.externalData.find((e) => e.key === 'length');
      n += len ? Number(len.value) : 0;
    }
  }
  return n;
}

/**
 * Stream a model to a sink: every tensor's bytes are written as they are read, so peak memory stays
 * near the model size. With `dataSink`, large initializers go to an external-data file named `dataName`.
 */
function writeModel(model: OnnxModel, sink: Sink, dataSink?: { sink: Sink; name: string; threshold: number }, keepExternal = false): void {
  const proto = model.proto;
  const graph = proto.graph!;
  const inits = graph.initializer;
  const planned: PlannedTensor[] = [];
  let dataOffset = 0;
  const restore: Array<() => void> = [];
  try {
    for (const t of inits) {
      if (keepExternal && t.dataLocation === DataLocation.EXTERNAL) {
        planned.push(planTensor(t, undefined));
        continue;
      }
      const raw = tensorBytes(t, model.ext);
      if (dataSink && raw.byteLength >= dataSink.threshold) {
        const pad = (4096 - (dataOffset % 4096)) % 4096;
        const offset = dataOffset + pad;
        const savedLoc = t.dataLocation;
        const savedExt = t.externalData;
        const savedRaw = t.rawData;
        t.dataLocation = DataLocation.EXTERNAL;
        t.externalData = [
          create(StringStringEntryProtoSchema, { key: 'location', value: dataSink.name }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(raw.byteLength) }),
        ];
        t.rawData = new Uint8Array(0);
        restore.push(() => {
          t.dataLocation = savedLoc;
          t.externalData = savedExt;
          t.rawData = savedRaw;
        });
        if (pad) dataSink.sink.write(new Uint8Array(pad));
        dataSink.sink.write(raw);
        dataOffset = offset + raw.byteLength;
        planned.push(planTensor(t, undefined));
      } else {
        if (t.dataLocation === DataLocation.EXTERNAL) {
          const savedLoc = t.dataLocation;
          const savedExt = t.externalData;
          t.dataLocation = DataLocation.DEFAULT;
          t.externalData = [];
          restore.push(() => {
            t.dataLocation = savedLoc;
            t.externalData = savedExt;
          });
        }
        planned.push(planTensor(t, raw));
      }
    }
    graph.initializer = [];
    proto.graph = undefined;
    let modelHead: Uint8Array;
    let graphHead: Uint8Array;
    try {
      modelHead = toBinary(ModelProtoSchema, proto);
      graphHead = toBinary(GraphProtoSchema, graph);
    } finally {
      proto.graph = graph;
      graph.initializer = inits;
    }
    let graphLen = graphHead.byteLength;
    for (const p of planned) graphLen += 1 + varint(p.length).byteLength + p.length;
    sink.write(modelHead);
    sink.write(Uint8Array.of(TAG_GRAPH));
    sink.write(varint(graphLen));
    sink.write(graphHead);
    for (const p of planned) {
      sink.write(Uint8Array.of(TAG_INITIALIZER));
      sink.write(varint(p.length));
      sink.write(p.head);
      if (p.raw) {
        sink.write(Uint8Array.of(TAG_RAW_DATA));
        sink.write(varint(p.raw.byteLength));
        sink.write(p.raw);
      }
    }
  } finally {
    for (const r of restore.reverse()) r();
  }
}

/**
 * Serialize a model into one buffer with all tensors inline (for onnxruntime sessions).
 * @throws OptinError if the model would exceed protobuf's 2 GB limit.
 */
export function serializeModel(model: OnnxModel): Uint8Array {
  if (inlineSize(model) > TWO_GB) {
    throw new OptinError('unsupported', `${model.path} exceeds 2 GB inline; it can only be written with external data`);
  }
  const chunks: Uint8Array[] = [];
  writeModel(model, { write: (c) => chunks.push(c) });
  return Buffer.concat(chunks);
}

/** Model bytes for an onnxruntime session, plus the folder its external-data references resolve against. */
export interface SessionBytes {
  bytes: Uint8Array;
  /** Set when tensors stay in their external-data files: onnxruntime reads them from this folder. */
  externalFolder?: string;
}

/**
 * Serialize a model for an onnxruntime session. Tensors that live in external-data files stay
 * there (onnxruntime reads them from the model's folder), so a model over 2 GB opens, and its
 * weights are never copied into this process.
 */
export function sessionBytes(model: OnnxModel): SessionBytes {
  if (!model.usesExternalData) return { bytes: serializeModel(model) };
  const chunks: Uint8Array[] = [];
  writeModel(model, { write: (c) => chunks.push(c) }, undefined, true);
  return { bytes: Buffer.concat(chunks), externalFolder: model.ext.baseDir };
}

class FileSink implements Sink {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  constructor(private readonly fd: number) {}
  write(chunk: Uint8Array): void {
    if (chunk.byteLength >= 1 << 20) {
      this.flush();
      writeAll(this.fd, chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    if (this.pendingBytes >= 1 << 20) this.flush();
  }
  flush(): void {
    if (this.pending.length) writeAll(this.fd, Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
}


/**
 * Write a model to `outPath` atomically (temp file + rename). The source model file is never
 * written; an output path equal to the source is refused.
 * @returns the files written (the model and, when used, its external-data file).
 */
export function saveModel(model: OnnxModel, outPath: string, opts: SaveOptions = {}): string[] {
  const out = path.resolve(outPath);
  if (out === path.resolve(model.path)) {
    throw new OptinError('usage', `refusing to overwrite the input model ${out}; choose another output path`);
  }
  const useExternal = opts.externalData ?? (model.usesExternalData || inlineSize(model) > TWO_GB);
  const dataName = `${path.basename(out)}.data`;
  const dataPath = path.join(path.dirname(out), dataName);
  removeStaleTemps(path.dirname(out));
  const tmpModel = tempPathFor(out);
  const tmpData = useExternal ? tempPathFor(dataPath) : undefined;
  const fds: number[] = [];
  try {
    const fdModel = fs.openSync(tmpModel, 'wx');
    fds.push(fdModel);
    const modelSink = new FileSink(fdModel);
    let dataSink: FileSink | undefined;
    if (tmpData) {
      const fdData = fs.openSync(tmpData, 'wx');
      fds.push(fdData);
      dataSink = new FileSink(fdData);
    }
    writeModel(
      model,
      modelSink,
      dataSink ? { sink: dataSink, name: dataName, threshold: opts.externalThreshold ?? 1024 } : undefined,
    );
    modelSink.flush();
    dataSink?.flush();
    for (const fd of fds.splice(0)) {
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    if (tmpData) fs.renameSync(tmpData, dataPath);
    fs.renameSync(tmpModel, out);
    return tmpData ? [out, dataPath] : [out];
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    for (const f of [tmpModel, tmpData]) if (f) fs.rmSync(f, { force: true });
    if (e instanceof OptinError) throw e;
    throw writeError(out, e, inlineSize(model));
  }
}
