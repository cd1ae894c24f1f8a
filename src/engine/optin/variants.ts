import type * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { ModelProto } from '../onnx/schema';
import type { EpChoice } from '../runtime/providers';
import type { DeviceFeeds } from '../runtime/deviceFeeds';
import { OptinError } from '../errors';
import { describeSession, runSession, sessionFor } from '../runtime/session';

/** One masked run of `v` stacked variants: its feeds, then what it returns. */
export interface VariantRun {
  /**
   * Onnxruntime runs per chunk of variants (default 1): the parts of a calibration batch scored
   * apart (length buckets), each with its own feeds; `read` gets their outputs in order.
   */
  parts?: number;
  /** Feeds for variants start .. start + v - 1 of a part (inputs tiled v times and the masks that remove one element per variant). */
  feeds: (start: number, v: number, part: number) => Promise<Record<string, ort.Tensor>>;
  /** The manifold and output terms of each variant of the chunk, from each part's outputs. */
  read: (outs: ort.InferenceSession.OnnxValueMapType[], v: number) => Promise<Terms> | Terms;
  /** After each run (progress), with the terms of the elements done so far. */
  onRun?: (start: number, v: number, sofar: { md: number[]; kl: number[] }) => void;
}

/** Raw manifold and output terms of the variants of one chunk. */
export interface Terms { md: ArrayLike<number>; kl: ArrayLike<number> }

/**
 * The one scoring loop (heads, neurons and channels alike): one session for an instrumented graph
 * (a suffix or the whole model with one layer's or group's masks), `count` elements masked one per
 * variant, `perRun` variants stacked per onnxruntime run; returns each element's raw MD and KL.
 * Cancellation is checked before every run; the session and the tiled device feeds are released
 * however it ends.
 * @returns the raw terms and the provider that ran them
 */
export async function scoreVariants(o: {
  model: OnnxModel; proto: ModelProto; label: string; ep: EpChoice; dev: DeviceFeeds; count: number; perRun: number; signal?: AbortSignal;
} & VariantRun): Promise<{ md: number[]; kl: number[]; provider: string }> {
  const s = await sessionFor(o.model, o.proto, `${o.model.path} (${o.label})`, o.ep);
  const md = new Array<number>(o.count);
  const kl = new Array<number>(o.count);
  try {
    for (let start = 0; start < o.count; start += o.perRun) {
      if (o.signal?.aborted) throw new OptinError('cancelled', 'scoring was cancelled');
      const v = Math.min(o.perRun, o.count - start);
      const outs: ort.InferenceSession.OnnxValueMapType[] = [];
      for (let p = 0; p < (o.parts ?? 1); p++) outs.push(await runSession(s.session, await o.feeds(start, v, p), `${o.model.path} (${o.label})`));
      const r = await o.read(outs, v);
      for (let j = 0; j < v; j++) {
        md[start + j] = r.md[j]!;
        kl[start + j] = r.kl[j]!;
      }
      o.onRun?.(start, v, { md, kl });
    }
    return { md, kl, provider: describeSession(s) };
  } finally {
    o.dev.clear();
    await s.session.release();
  }
}
