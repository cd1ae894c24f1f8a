import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import type { CalibrationBatch } from '../data/calibration';
import type { ModelStructure } from '../structure/types';
import type { ChannelStructure } from '../channels/structure';
import { macTerms, termsMacs, type MacTerm } from '../channels/macs';
import { scoreChannels } from '../channels/scorer';
import { channelWeightScores } from '../channels/baselines';
import { layerMacs } from '../flops';
import { modelRef } from '../plan/files';
import type { ModelRef } from '../plan/schema';
import type { ScoreOptions } from '../optin/scorer';
import type { RawLosses, Scores } from '../optin/types';

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median score per unit of output term (KL) over elements whose output term is positive. */
function perKl(scores: number[][], raw: RawLosses[]): number | undefined {
  return median(scores.flatMap((row, l) => row.flatMap((s, j) => (raw[l]?.kl[j] ?? 0) > 0 ? [s / raw[l]!.kl[j]!] : [])));
}

/**
 * One currency for one global search. Channels are scored by their own trajectories (later feature
 * maps), heads and neurons by theirs (later layers' features), so their manifold terms are not
 * comparable; the output term is, since every element is measured on the same outputs. OPTIN
 * scores: channel scores are rescaled so that a channel and a neuron with the same output term
 * score alike (ratio of the median score per unit of output term). Weight-magnitude scores: so that
 * channels and neurons have the same mean importance per MAC, as heads and neurons already do.
 */
export function channelScale(t: Scores, c: Scores, st: ModelStructure, cs: ChannelStructure, terms: MacTerm[], seqLen: number): number {
  if (t.mode !== 'magnitude' && c.mode !== 'magnitude') {
    const tn = perKl(t.neurons, t.raw.neurons) ?? perKl(t.heads, t.raw.heads);
    const cn = perKl(c.neurons, c.raw.neurons);
    return tn && cn ? tn / cn : 1;
  }
  const macs = st.layers.map((l) => layerMacs(l, seqLen, st.hidden));
  const nCost = macs.reduce((a, m) => a + m.ffn, 0), nSum = t.neurons.flat().reduce((a, b) => a + b, 0);
  const cCost = termsMacs(terms, cs.groups.map((g) => g.width)), cSum = c.neurons.flat().reduce((a, b) => a + b, 0);
  return nCost > 0 && cCost > 0 && nSum > 0 && cSum > 0 ? (nSum / nCost) / (cSum / cCost) : 1;
}

/** The scores of a hybrid model: its transformer layers, then its channel groups as layers of 0 heads. */
export function mergeScores(t: Scores, c: Scores, scale: number): Scores {
  return {
    ...t,
    heads: [...t.heads, ...c.neurons.map(() => [])],
    neurons: [...t.neurons, ...c.neurons.map((row) => row.map((x) => x * scale))],
    raw: { heads: [...t.raw.heads, ...c.neurons.map(() => ({ md: [], kl: [] }))], neurons: [...t.raw.neurons, ...c.raw.neurons] },
    seconds: t.seconds + c.seconds,
  };
}

/**
 * Score the channel groups of a hybrid model (exact OPTIN, or the weight-magnitude baseline) and
 * add them to the transformer's scores as further layers.
 */
export async function withChannelScores(model: OnnxModel, st: ModelStructure, cs: ChannelStructure, batch: CalibrationBatch, t: Scores, seqLen: number, opts: Pick<ScoreOptions, 'ep' | 'onProgress' | 'signal'>): Promise<Scores> {
  const terms = macTerms(new GraphIndex(model.proto.graph!, model.ext), cs.shapes, cs.groups);
  const c: Scores = t.mode === 'magnitude'
    ? { ...t, heads: [], neurons: channelWeightScores(model, cs, 'magnitude'), raw: { heads: [], neurons: cs.groups.map(() => ({ md: [], kl: [] })) }, seconds: 0 }
    : await scoreChannels(model, cs, batch, opts);
  return mergeScores(t, c, channelScale(t, c, st, cs, terms, seqLen));
}

/** Identity and geometry of a hybrid model: transformer layers, then one layer of 0 heads per channel group, and the groups' MAC terms. */
export function hybridModelRef(model: OnnxModel, sha256: string, st: ModelStructure, cs: ChannelStructure): ModelRef {
  const terms = macTerms(new GraphIndex(model.proto.graph!, model.ext), cs.shapes, cs.groups);
  const ref = modelRef(model.path, sha256, st);
  return {
    ...ref,
    architecture: cs.architecture,
    layers: [...ref.layers, ...cs.groups.map((g) => ({ heads: 0, headSize: 0, vHeadSize: 0, ffn: g.width }))],
    hybrid: { transformerLayers: st.layers.length, names: cs.groups.map((g) => g.name), terms },
  };
}
