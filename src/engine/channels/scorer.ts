import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/calibration';
import { DeviceFeeds } from '../runtime/deviceFeeds';
import { GraphBuilder } from '../graph/builder';
import { defaultOpset } from '../graph/surgery';
import { OptinError } from '../errors';
import { scoreVariants } from '../optin/variants';
import { gramTerm, outputLoss, type LossConstants } from '../optin/lossGraph';
import { outputConstants, teacherRowsOf } from '../optin/scorer';
import { sampleIndices } from '../optin/random';
import { balance } from '../optin/balance';
import { OPTIN_DEFAULTS, type OptinConstants, type RawLosses, type Scores } from '../optin/types';
import type { ScoreOptions } from '../optin/scorer';
import { channelMaskName, instrumentChannels } from './instrument';
import { comparedFeatures, type ChannelStructure } from './structure';
import { runChannelTeacher, type ChannelTeacher } from './teacher';
import { gatherPixels, samplePixels } from '../optin/pixels';
import { channelSuffix } from './suffix';
import { scoredOutput } from '../graph/scoredOutput';

/** Options for {@link scoreChannels}: the transformer scorer's, with groups as layers and channels as neurons. */
export type ChannelScoreOptions = Pick<ScoreOptions, 'ep' | 'constants' | 'onProgress' | 'signal' | 'layers' | 'neuronSubset'> & {
  /** Masked variants stacked per onnxruntime run (default: as many as fit 64 examples). */
  variantsPerRun?: number;
  /** Run each group's masked variants from the dense values before its mask (default true; false: the whole graph, for tests). */
  suffix?: boolean;
};

/** Sampled rows (positions x examples) of every feature and the teacher's values there. */
function featureRows(teacher: ChannelTeacher, c: OptinConstants): Array<{ rows: number[]; teacher: ReturnType<typeof teacherRowsOf> }> {
  return teacher.features.map((f) => {
    const rows = sampleIndices(f.rows, c.tokenSample, c.seed);
    return { rows, teacher: teacherRowsOf(f.data, rows, f.channels) };
  });
}

/**
 * Exact OPTIN scores for channel groups (docs/method.md §2 with spatial positions as the tokens of
 * the manifold term): for every channel, the masked model's later block outputs (sampled positions,
 * channels as features) are compared with the dense model's by Gram distance, and its logits by
 * KL. Groups play the role of layers and channels of neurons in the returned {@link Scores}.
 * Unlike the transformer scores, the manifold term is the mean over the compared block outputs, not
 * their sum: blocks differ in width and resolution, and a sum over a varying number of later blocks
 * makes early groups' channels outrank late ones by construction. The transformer's last-layer decay
 * is not applied. Measurements behind both choices: README, "Scores, two choices of ours".
 */
export async function scoreChannels(model: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, opts: ChannelScoreOptions = {}): Promise<Scores> {
  const c: OptinConstants = { ...OPTIN_DEFAULTS, ...opts.constants };
  // The last-layer decay is about a transformer's last encoder layer; the last channel group (a
  // classifier's hidden layer, a segmentation head) has no such role.
  const noLastDecay: OptinConstants = { ...c, lastLayerDecay: 1 };
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  const cancelled = (): void => { if (opts.signal?.aborted) throw new OptinError('cancelled', 'scoring was cancelled'); };
  cancelled();
  const L = cs.groups.length;
  const scored = scoredOutput(model.proto, cs.outputs[0]!);
  const indices = (l: number): number[] => (opts.layers && !opts.layers.includes(l) ? [] : opts.neuronSubset?.[l] ?? Array.from({ length: cs.groups[l]!.width }, (_, j) => j));
  const total = cs.groups.reduce((a, _g, l) => a + indices(l).length, 0);
  opts.onProgress?.({ phase: 'teacher', done: 0, total, elapsed: 0 });
  const teacher = await runChannelTeacher(model, cs, batch, opts.ep ?? 'cpu');
  const B = batch.batch;
  const pixels = samplePixels(teacher.logits, teacher.logitsDims, c.seed);
  const out: LossConstants = { rows: [], tokensPerVariant: 0, hidden: 0, teacherRows: new Map(), ...(pixels ? outputConstants(pixels.teacher, [pixels.rows.length, pixels.classes], -1) : outputConstants(teacher.logits, teacher.logitsDims, -1)) };
  const feats = featureRows(teacher, c);
  const m = opts.variantsPerRun ?? Math.max(1, Math.floor(64 / B));
  const raw: RawLosses[] = [];
  const dev = new DeviceFeeds(teacher.provider);
  let done = 0;
  let provider = 'cpu';
  try {
    for (let l = 0; l < L; l++) {
      cancelled();
      const grp = cs.groups[l]!;
      const idx = indices(l);
      const r: RawLosses = { md: new Array<number>(grp.width).fill(0), kl: new Array<number>(grp.width).fill(0) };
      raw.push(r);
      if (!idx.length) continue;
      const compared = comparedFeatures(cs, l);
      const proto = instrumentChannels(model, cs, [l], [...compared.map((k) => cs.features[k]!.value), scored]);
      const b = new GraphBuilder(proto.graph!, defaultOpset(proto));
      let md: string | undefined;
      for (const k of compared) {
        const f = cs.features[k]!;
        const rank = f.dims.length;
        const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== f.axis), f.axis];
        const last = f.axis === rank - 1 ? f.value : b.node('Transpose', [f.value], { perm }, 'channelsLast');
        const C = f.dims[f.axis]!;
        const f3 = b.reshape(last, [-1, teacher.features[k]!.rows, C], 'feat');
        const g = b.node('Gather', [f3, b.ints(feats[k]!.rows, [feats[k]!.rows.length], 'rows')], { axis: 1 }, 'rows');
        const term = gramTerm(b, g, feats[k]!.rows.length, feats[k]!.teacher, `${k}`);
        md = md ? b.node('Add', [md, term], {}, 'md') : term;
      }
      let logitsName = scored;
      if (pixels) {
        logitsName = gatherPixels(b, logitsName, pixels);
        b.output(logitsName);
      }
      proto.graph!.output = proto.graph!.output.filter((o) => o.name === logitsName);
      b.output(md!);
      const sfx = opts.suffix === false ? undefined : await channelSuffix(model, cs, proto, channelMaskName(l), batch, opts.ep ?? 'cpu');
      const given = { ...batch.feeds, ...sfx?.values };
      const inputs = new Set(proto.graph!.input.map((i) => i.name));
      const res = await scoreVariants({
        model, proto, label: `group ${grp.name}`, ep: opts.ep ?? 'cpu', dev, count: idx.length, perRun: m, ...(opts.signal ? { signal: opts.signal } : {}),
        feeds: async (start, v) => {
          const chunk = idx.slice(start, start + v);
          const feeds: Record<string, ort.Tensor> = {};
          for (const [name, t] of Object.entries(given)) if (inputs.has(name)) feeds[name] = await dev.tiled(name, t, v);
          const mask = new Float32Array(v * B * grp.width).fill(1);
          chunk.forEach((ch, j) => { for (let e = j * B; e < (j + 1) * B; e++) mask[e * grp.width + ch] = 0; });
          feeds[channelMaskName(l)] = new ort.Tensor('float32', mask, [v * B, grp.width]);
          return feeds;
        },
        read: ([run], v) => ({ md: run![md!]!.data as Float32Array, kl: outputLoss(run![logitsName]!.data as Float32Array, v, out, c.temperature) }),
        onRun: (_start, v) => {
          done += v;
          const el = elapsed();
          opts.onProgress?.({ phase: 'layer', layer: l, done, total, elapsed: el, eta: (el / done) * (total - done) });
        },
      });
      provider = res.provider;
      if (sfx) dev.clear();
      idx.forEach((ch, j) => { r.md[ch] = res.md[j]! / compared.length; r.kl[ch] = res.kl[j]!; });
      opts.onProgress?.({ phase: 'layer', layer: l, done, total, elapsed: elapsed(), partial: { layer: l, heads: [], neurons: balance(raw, 'neuron', noLastDecay, L)[l]! } });
    }
  } finally {
    await dev.close();
  }
  return {
    heads: cs.groups.map(() => []),
    neurons: balance(raw, 'neuron', noLastDecay),
    raw: { heads: cs.groups.map(() => ({ md: [], kl: [] })), neurons: raw },
    outputLoss: out.kind === 'cosine' ? 'cosine-distance' : out.kind,
    tokenRows: feats.reduce((a, f) => Math.max(a, f.rows.length), 0),
    calibration: { examples: B, seqLen: batch.seqLen, meanLength: batch.meanLength, source: batch.source, ...(batch.warning ? { warning: batch.warning } : {}) },
    mode: 'exact',
    provider,
    ...(dev.onDevice ? { inputsOnDevice: true } : {}),
    seconds: elapsed(),
  };
}
