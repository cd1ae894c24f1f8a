import * as ort from 'onnxruntime-node';
import { OptinError } from '../errors';
import { gpuCandidates, type EpChoice } from './providers';

/** An onnxruntime session plus the provider it actually runs on. */
export interface Session {
  readonly session: ort.InferenceSession;
  readonly provider: 'cpu' | 'cuda' | 'dml' | 'coreml';
  /** Why a GPU provider was not used, when auto fell back to CPU. */
  readonly fallbackReason?: string;
}

/** Options for {@link createSession}. */
export interface SessionOptions {
  ep?: EpChoice;
  /** Threads for intra-op parallelism (0 = onnxruntime default). */
  threads?: number;
  /** Label for error messages (the model path). */
  label: string;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.replace(/^\[[^\]]*\]\s*/, '').slice(0, 400);
}

async function tryCreate(model: string | Uint8Array, ep: string, threads: number): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
  };
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

/**
 * Create an onnxruntime session on the requested provider. `auto` tries the platform's GPU
 * providers and falls back to CPU with a reason (onnxruntime-node throws instead of falling back).
 * @throws OptinError('runtime') when onnxruntime refuses the graph, naming the model and its reason.
 */
export async function createSession(model: string | Uint8Array, opts: SessionOptions): Promise<Session> {
  const ep = opts.ep ?? 'cpu';
  const threads = opts.threads ?? 0;
  const reasons: string[] = [];
  const candidates = ep === 'auto' ? gpuCandidates() : ep === 'cpu' ? [] : [ep];
  for (const c of candidates) {
    try {
      return { session: await tryCreate(model, c, threads), provider: c };
    } catch (e) {
      if (ep !== 'auto') {
        throw new OptinError('runtime', `${opts.label}: execution provider "${c}" is not available: ${firstLine(e)}`);
      }
      reasons.push(`${c}: ${firstLine(e)}`);
    }
  }
  try {
    const session = await tryCreate(model, 'cpu', threads);
    return reasons.length ? { session, provider: 'cpu', fallbackReason: reasons.join('; ') } : { session, provider: 'cpu' };
  } catch (e) {
    throw new OptinError('runtime', `${opts.label}: onnxruntime cannot load this graph: ${firstLine(e)}`);
  }
}

/** Load a model in onnxruntime once to prove it runs here; releases the session. */
export async function checkLoadable(model: string | Uint8Array, label: string): Promise<void> {
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
