import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphBuilder, modelBytes } from '../graph/builder';
import { DataType, GraphProtoSchema } from '../onnx/schema';
import type { TensorData } from '../data/calibration';
import type { Provider } from './providers';
import { runSession } from './session';

const ELEM: Record<TensorData['type'], number> = { float32: DataType.FLOAT, int64: DataType.INT64, int32: DataType.INT32 };

/**
 * Whether onnxruntime-node can keep a tensor on this provider's device between runs. Only WebGPU:
 * the binding returns WebGPU outputs as 'gpu-buffer' tensors that later runs (of any session on the
 * same device) accept as inputs. Reading one back (`getData()`) aborts the process in 1.30, so
 * outputs that are read stay on the CPU.
 */
export function keepsInputsOnDevice(provider: Provider): boolean {
  return provider === 'webgpu';
}

function tileModel(type: TensorData['type'], rank: number): Uint8Array {
  const graph = create(GraphProtoSchema, { name: 'optin-tile' });
  const b = new GraphBuilder(graph, 17);
  const dims = Array.from({ length: rank }, (_, i) => `d${i}`);
  b.input('x', dims, ELEM[type]);
  b.input('repeats', [rank], DataType.INT64);
  const y = b.node('Tile', ['x', 'repeats']);
  b.output(y, ELEM[type]);
  return modelBytes(graph, 'optin-tile');
}

/**
 * Inputs that repeat across runs, uploaded once and kept on the device: `tiled(t, m)` is `t`
 * repeated m times along axis 0, made by a Tile graph on the device itself (one upload of `t`, not
 * of the m copies). On a provider that cannot keep tensors ({@link keepsInputsOnDevice}) the same
 * call returns a CPU tensor, so callers have one code path. Tensors live until {@link clear}.
 */
export class DeviceFeeds {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private readonly held = new Map<string, ort.Tensor>();
  readonly onDevice: boolean;

  constructor(provider: Provider) {
    this.onDevice = keepsInputsOnDevice(provider);
  }

  /** `t` repeated m times along axis 0; `key` names the source so repeated calls reuse the tensor. */
  async tiled(key: string, t: TensorData, m: number): Promise<ort.Tensor> {
    const id = `${key}\u0000${m}`;
    const have = this.held.get(id);
    if (have) return have;
    const made = this.onDevice ? await this.tileOnDevice(t, m) : cpuTile(t, m);
    this.held.set(id, made);
    return made;
  }

  private async tileOnDevice(t: TensorData, m: number): Promise<ort.Tensor> {
    const sk = `${t.type}/${t.dims.length}`;
    let s = this.sessions.get(sk);
    if (!s) {
      s = ort.InferenceSession.create(tileModel(t.type, t.dims.length), { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer', logSeverityLevel: 3 });
      this.sessions.set(sk, s);
    }
    const session = await s;
    const repeats = new ort.Tensor('int64', BigInt64Array.from(t.dims.map((_, i) => BigInt(i === 0 ? m : 1))), [t.dims.length]);
    const out = await runSession(session, { x: new ort.Tensor(t.type, t.data, t.dims), repeats }, 'device feeds (Tile)');
    return out[session.outputNames[0]!] as ort.Tensor;
  }

  /** Free the tensors made so far (the Tile sessions stay for the next ones). */
  clear(): void {
    for (const t of this.held.values()) if (t.location !== 'cpu') t.dispose();
    this.held.clear();
  }

  /** Free everything. */
  async close(): Promise<void> {
    this.clear();
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}

/** `t` repeated m times along axis 0, on the CPU. */
export function cpuTile(t: TensorData, m: number): ort.Tensor {
  const n = t.data.length;
  const data = new (t.data.constructor as { new (n: number): typeof t.data })(n * m);
  for (let i = 0; i < m; i++) (data as Float32Array).set(t.data as Float32Array, i * n);
  return new ort.Tensor(t.type, data, [t.dims[0]! * m, ...t.dims.slice(1)]);
}
