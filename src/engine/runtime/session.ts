import * as ort from 'onnxruntime-node';
import { OptinError } from '../errors';
import { gpuCandidates, providerMissing, type EpChoice, type Provider } from './providers';
import { webgpuAdapter } from './adapter';
import { probeProvider } from './probe';
import { sessionBytes, type SessionBytes } from '../onnx/writer';
import type { OnnxModel } from '../onnx/model';
import type { ModelProto } from '../onnx/schema';
import type { TensorData } from '../data/types';

/** What a session is created from: a model file, model bytes, or bytes whose tensors stay in external-data files. */
export type ModelSource = string | Uint8Array | SessionBytes;

/** An onnxruntime session plus the provider it actually runs on. */
export interface Session {
  readonly session: ort.InferenceSession;
  readonly provider: Provider;
  /** The device it runs on, when known (e.g. "NVIDIA (Vulkan)" for WebGPU). */
  readonly device?: string;
  /** Why a GPU provider was not used, when auto fell back to CPU. */
  readonly fallbackReason?: string;
}

/** "webgpu (SwiftShader (Vulkan, software))" or "cpu": the provider and device in one phrase. */
export function describeSession(s: Pick<Session, 'provider' | 'device'>): string {
  return s.device ? `${s.provider} (${s.device})` : s.provider;
}

/** Options for {@link createSession}. */
export interface SessionOptions {
  ep?: EpChoice;
  /** Threads for intra-op parallelism (0 = onnxruntime default). */
  threads?: number;
  /** Label for error messages (the model path). */
  label: string;
  /**
   * Let idle intra-op threads sleep instead of spinning after a run (default false). Timing several
   * sessions interleaved needs it: a session's spinning threads otherwise steal the cores the next
   * session's run needs.
   */
  noSpin?: boolean;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.replace(/^\[[^\]]*\]\s*/, '').slice(0, 400);
}

async function tryCreate(model: ModelSource, ep: string, threads: number, noSpin = false): Promise<ort.InferenceSession> {
  const folder = typeof model === 'object' && 'bytes' in model ? model.externalFolder : undefined;
  const session: Record<string, unknown> = {
    ...(noSpin ? { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } : {}),
    ...(folder ? { model_external_initializers_file_folder_path: folder } : {}),
  };
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
    ...(Object.keys(session).length ? { extra: { session } } : {}),
  };
  if (typeof model === 'string') return ort.InferenceSession.create(model, opts);
  return ort.InferenceSession.create('bytes' in model ? model.bytes : model, opts);
}

/** Why `auto` must not use a provider before even trying it (undefined: worth trying). */
function skipReason(p: Provider): string | undefined {
  if (p !== 'webgpu') return undefined;
  const a = webgpuAdapter();
  if (!a) return 'no Vulkan driver is installed';
  if (a.software) return `its only adapter is ${a.name}, a CPU rasteriser slower than the CPU provider (request --ep webgpu to use it anyway)`;
  return undefined;
}

/**
 * Create an onnxruntime session on the requested provider. `auto` tries the GPU providers of
 * {@link gpuCandidates} (never a software WebGPU adapter) and falls back to CPU with the reasons
 * (onnxruntime-node throws instead of falling back). Every GPU provider must first agree with the
 * CPU on a probe graph ({@link probeProvider}).
 * @throws OptinError('runtime') when onnxruntime refuses the graph or an explicitly requested provider is missing or wrong.
 */
export async function createSession(model: ModelSource, opts: SessionOptions): Promise<Session> {
  const ep = opts.ep ?? 'cpu';
  const threads = opts.threads ?? 0;
  const reasons: string[] = [];
  const candidates: Provider[] = ep === 'auto' ? gpuCandidates() : ep === 'cpu' ? [] : [ep];
  for (const c of candidates) {
    const skip = ep === 'auto' ? skipReason(c) : undefined;
    if (skip) {
      reasons.push(`${c}: ${skip}`);
      continue;
    }
    try {
      const missing = providerMissing(c);
      if (missing) throw new Error(missing);
      const wrong = await probeProvider(c);
      if (wrong) throw new Error(wrong);
      const device = c === 'webgpu' ? webgpuAdapter()?.name : undefined;
      return { session: await tryCreate(model, c, threads, opts.noSpin), provider: c, ...(device ? { device } : {}) };
    } catch (e) {
      if (ep !== 'auto') {
        throw new OptinError('runtime', `${opts.label}: execution provider "${c}" is not usable: ${firstLine(e)}`);
      }
      reasons.push(`${c}: ${firstLine(e)}`);
    }
  }
  try {
    const session = await tryCreate(model, 'cpu', threads, opts.noSpin);
    return reasons.length ? { session, provider: 'cpu', fallbackReason: reasons.join('; ') } : { session, provider: 'cpu' };
  } catch (e) {
    throw new OptinError('runtime', `${opts.label}: onnxruntime cannot load this graph: ${firstLine(e)}`);
  }
}

/** Load a model in onnxruntime once to prove it runs here; releases the session. */
export async function checkLoadable(model: ModelSource, label: string): Promise<void> {
  const s = await createSession(model, { ep: 'cpu', label });
  await s.session.release();
}

/** Run a session, turning onnxruntime's multi-line errors into one OptinError line. */
export async function runSession(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, label: string): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await s.run(feeds);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ').slice(0, 500);
    throw new OptinError('runtime', `${label}: onnxruntime failed: ${msg}`);
  }
}

/** Serialize an in-memory variant of a model and open it in onnxruntime. */
export async function sessionFor(model: OnnxModel, proto: ModelProto, label: string, ep: EpChoice = 'cpu', threads = 0): Promise<Session> {
  return createSession(sessionBytes({ ...model, proto }), { ep, threads, label });
}

/** Convert plain tensors to onnxruntime tensors. */
export function toOrt(feeds: Record<string, TensorData>): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
}
