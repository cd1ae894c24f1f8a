import * as fs from 'node:fs';
import { inputSizeFor } from '../data/inputSize';
import type { InputSize } from '../data/types';
import * as path from 'node:path';
import { loadModel, type OnnxModel } from '../onnx/model';
import { saveModel } from '../onnx/writer';
import { countParameters } from '../onnx/tensor';
import { analyzeStructure, detectStructure } from '../structure/detect';
import type { MeasuredShapes } from '../groups/shapes';
import { loadCalibration, type DataOptions } from '../data/calibration';
import { sha256File } from '../util/atomic';
import type { PlanFile } from '../plan/schema';
import { TOOL } from '../version';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';
import { applyKeep, checkKeep, type KeepSet } from './apply';
import { tuneMasks, type TuneStep } from '../repair/tune';
import { verifyPruned, type ChannelKeep, type Verification } from '../verify/verify';
import { applyChannelKeep } from '../channels/apply';
import { channelsOutside } from '../hybrid/structure';
import type { ModelStructure } from '../structure/types';
import { refitProjections, type RefitStep } from '../repair/refit';
import { defaultOutput } from './output';
import { checkOutput } from '../preflight';
import { analyzeChannels } from '../channels/structure';
import { checkChannelPlan } from '../channels/jobs';
import { cutAndVerifyChannels } from '../channels/applyPlan';
import { reconstructConsumers, type ChannelRepairMethod, type ReconstructionStep } from '../repair/channelRefit';
import { withConsumerUpdates } from '../channels/consumers';
import { headCount } from '../structure/layer';

export { defaultOutput } from './output';

/** What to apply and where to write it. */
export interface ApplyRequest {
  model: string;
  plan: PlanFile;
  /** Output path (default `<name>.optin-<pct>.onnx` beside the model). */
  out?: string;
  /**
   * Repair before writing: mask tuning for heads and neurons (docs/method.md §5), the consumers'
   * repair for channel groups. Unset: channel plans are repaired (the simple baselines need it
   * too), transformer plans are not; false turns it off.
   */
  tune?: boolean;
  /** How channel groups' consumers are repaired (default 'auto': least squares where affordable, statistics elsewhere). */
  channelRepair?: ChannelRepairMethod;
  /** Least-squares refit of the output projections / FFN second matrices (channel groups: every consumer) over the kept elements. */
  refit?: boolean;
  /** Calibration data for verification and tuning (the plan's data is the natural choice). */
  data: DataOptions;
  /** Execution provider verification runs on (default cpu). */
  ep?: EpChoice;
}

/** The written model and the evidence that it is right. */
export interface ApplyReport {
  input: string;
  output: string;
  files: string[];
  budget: number;
  kept: { heads: number[]; neurons: number[] };
  /** Channel networks: the group names (kept.neurons / total.neurons are their channels). */
  groups?: string[];
  /** Hybrid models: a name per row of kept/total (transformer layer indices, then channel group names). */
  layerNames?: string[];
  total: { heads: number[]; neurons: number[] };
  /** `perExample`: staged models, whose MACs are counted at each layer's measured geometry (no one sequence length). */
  macs: { seqLen: number; before: number; after: number; perExample?: boolean };
  parameters: { before: number; after: number };
  fileBytes: { before: number; after: number };
  verification: Verification;
  tuning?: TuneStep[];
  /** Transformers with --refit: every pruned sublayer's least-squares refit. */
  refit?: RefitStep[];
  /** Channel networks (and the channel groups of hybrid models) with --tune or --refit: the least-squares refit of every consumer of a pruned group. */
  reconstruction?: ReconstructionStep[];
  /** Decoders with a key/value cache: key/value heads of each layer's cache inputs and outputs before and after (the model's signature changes). */
  cache?: { before: number[]; after: number[] };
  seconds: number;
}



function fileSize(files: string[]): number {
  return files.reduce((a, f) => a + fs.statSync(f).size, 0);
}

/** Check that a plan belongs to this exact model file. */
export function checkPlanFor(model: OnnxModel, plan: PlanFile): void {
  const sha = sha256File(model.path);
  if (plan.model.sha256 !== sha) {
    throw new OptinError('data', `the plan was made for ${plan.model.path} (sha256 ${plan.model.sha256.slice(0, 12)}…), not ${model.path} (sha256 ${sha.slice(0, 12)}…); score and plan this model first`);
  }
}

/** The channel side of a hybrid plan, checked against the groups found on this model. */
async function hybridPart(model: OnnxModel, st: ModelStructure, plan: PlanFile, shapes: MeasuredShapes, size?: InputSize): Promise<ChannelKeep> {
  const h = plan.model.hybrid!;
  const cs = await channelsOutside(model, st, size, shapes);
  const names = cs?.groups.map((g) => g.name) ?? [];
  if (!cs || h.transformerLayers !== st.layers.length || names.join('|') !== h.names.join('|')) {
    throw new OptinError('data', `${model.path}: the plan has ${h.transformerLayers} transformer layers and channel groups [${h.names.join(', ')}]; the model has ${st.layers.length} layers and [${names.join(', ')}]`);
  }
  const keep = checkChannelPlan(cs, { ...plan, keep: { heads: [], neurons: plan.keep.neurons.slice(h.transformerLayers) } }, model.path);
  return { cs, keep, terms: h.terms };
}

/**
 * Apply a plan: (optionally) tune the kept elements, cut the weights, prove the result against the
 * masked original and its MACs against the plan, then write it atomically. Nothing is written
 * when any step fails; the input model is only read.
 */
export async function applyPlan(req: ApplyRequest, signal?: AbortSignal, onStep?: (what: string) => void): Promise<ApplyReport> {
  const t0 = performance.now();
  const plan = req.plan;
  if (!(plan.budget > 0 && plan.budget <= 1)) throw new OptinError('usage', `plan budget ${plan.budget} is outside (0, 1]`);
  const out = req.out ?? defaultOutput(req.model, plan.budget);
  let model = loadModel(req.model);
  checkOutput(model.path, out, model.fileBytes);
  checkPlanFor(model, plan);
  if (plan.model.channels) return applyChannelPlan(req, model, out, t0, signal, onStep);
  if (req.tune && req.refit) throw new OptinError('usage', '--tune (mask scales) and --refit (least-squares weights) are alternatives; choose one');
  const size = inputSizeFor(req.model, req.data);
  const analysed = await analyzeStructure(model, { ...(size ? { size } : {}) });
  let st = analysed.st;
  const hybrid = plan.model.hybrid ? await hybridPart(model, st, plan, analysed.shapes, size) : undefined;
  const L = st.layers.length;
  const keep: KeepSet = { heads: plan.keep.heads.slice(0, L), neurons: plan.keep.neurons.slice(0, L) };
  checkKeep(st, keep, model.path);
  onStep?.('loading calibration data');
  const batch = await loadCalibration(model.path, st, req.data);
  const original = model;
  let reconstruction: ReconstructionStep[] | undefined;
  if (hybrid && (req.tune || req.refit)) {
    // The channel groups' consumers are refit as for channel networks; then the transformer part is tuned or refit.
    onStep?.('reconstructing consumers (least squares)');
    const r = await reconstructConsumers(model, hybrid.cs, hybrid.keep, batch, signal, req.channelRepair);
    reconstruction = r.steps;
    model = withConsumerUpdates(model, r.updates);
  }
  let refit: RefitStep[] | undefined;
  if (req.refit) {
    onStep?.('refitting projections (least squares)');
    const r = await refitProjections(model, st, keep, batch, analysed.shapes, signal);
    refit = r.steps;
    model = r.model;
    st = await detectStructure(model, { shapes: analysed.shapes, ...(size ? { size } : {}) });
  }
  let tuning: TuneStep[] | undefined;
  if (req.tune) {
    onStep?.('tuning masks');
    const t = await tuneMasks(model, st, keep, batch, { ...(signal ? { signal } : {}) });
    keep.scales = t.scales;
    tuning = t.steps;
  }
  if (signal?.aborted) throw new OptinError('cancelled', 'apply cancelled; nothing was written');
  onStep?.('cutting weights');
  const summary = {
    tool: `${TOOL.name} ${TOOL.version}`, budget: plan.budget, source: path.basename(model.path), sourceSha256: plan.model.sha256,
    macs: plan.macs, heads: plan.layers.map((l) => l.heads), neurons: plan.layers.map((l) => l.neurons), tuned: !!req.tune, refit: !!req.refit,
  };
  const cut = applyKeep(model, st, keep, { metadata: { 'optin.plan': JSON.stringify(summary) } });
  const proto = hybrid ? applyChannelKeep({ ...model, proto: cut }, hybrid.cs, hybrid.keep).proto : cut;
  const pruned: OnnxModel = { ...model, path: out, proto };
  onStep?.('verifying');
  const verification = await verifyPruned(model, st, pruned, keep, batch, { macs: plan.macs.kept, seqLen: plan.macs.seqLen }, req.ep ?? 'cpu', hybrid);
  if (signal?.aborted) throw new OptinError('cancelled', 'apply cancelled; nothing was written');
  onStep?.('writing');
  const files = saveModel({ ...model, proto }, out);
  const inputFiles = [original.path, ...(original.usesExternalData ? externalFiles(original) : [])];
  return {
    input: original.path, output: path.resolve(out), files, budget: plan.budget,
    kept: { heads: plan.layers.map((l) => l.heads), neurons: plan.layers.map((l) => l.neurons) },
    total: { heads: plan.model.layers.map((g) => g.heads), neurons: plan.model.layers.map((g) => g.ffn) },
    ...(hybrid ? { layerNames: [...st.layers.map((l) => String(l.index)), ...hybrid.cs.groups.map((g) => g.name)] } : {}),
    macs: { seqLen: plan.macs.seqLen, before: plan.macs.baseline, after: verification.macs, ...(st.layers.some((x) => x.shape) ? { perExample: true } : {}) },
    parameters: { before: countParameters(original.proto), after: countParameters(proto) },
    fileBytes: { before: fileSize(inputFiles), after: fileSize(files) },
    verification, ...(tuning ? { tuning } : {}), ...(refit ? { refit } : {}), ...(reconstruction ? { reconstruction } : {}),
    ...(st.layers.some((l) => l.attention?.cache) ? { cache: { before: st.layers.map(headCount), after: st.layers.map((l, i) => (keep.heads[i]!.length ? keep.heads[i]!.length : headCount(l))) } } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

async function applyChannelPlan(req: ApplyRequest, model: OnnxModel, out: string, t0: number, signal?: AbortSignal, onStep?: (what: string) => void): Promise<ApplyReport> {
  const plan = req.plan;
  onStep?.('finding channel groups');
  const cs = await analyzeChannels(model, inputSizeFor(req.model, req.data));
  const keep = checkChannelPlan(cs, plan, model.path);
  onStep?.('loading calibration data');
  const batch = await loadCalibration(model.path, cs, req.data);
  let base = model;
  let reconstruction: ReconstructionStep[] | undefined;
  const repair = req.tune ?? req.refit ?? true;
  if (repair || req.refit) {
    onStep?.('repairing the consumers of cut channels');
    const r = await reconstructConsumers(model, cs, keep, batch, signal, req.channelRepair);
    reconstruction = r.steps;
    base = withConsumerUpdates(model, r.updates);
  }
  if (signal?.aborted) throw new OptinError('cancelled', 'apply cancelled; nothing was written');
  onStep?.('cutting channels and verifying');
  const summary = {
    tool: `${TOOL.name} ${TOOL.version}`, budget: plan.budget, source: path.basename(model.path), sourceSha256: plan.model.sha256,
    macs: plan.macs, channels: plan.layers.map((l) => l.neurons), groups: plan.model.channels!.names, tuned: !!reconstruction,
  };
  const { pruned, verification } = await cutAndVerifyChannels(base, cs, plan, batch, req.ep ?? 'cpu', out, { 'optin.plan': JSON.stringify(summary) });
  if (signal?.aborted) throw new OptinError('cancelled', 'apply cancelled; nothing was written');
  onStep?.('writing');
  const files = saveModel({ ...pruned, path: model.path }, out);
  const inputFiles = [model.path, ...(model.usesExternalData ? externalFiles(model) : [])];
  return {
    input: model.path, output: path.resolve(out), files, budget: plan.budget,
    kept: { heads: plan.layers.map(() => 0), neurons: plan.layers.map((l) => l.neurons) }, groups: plan.model.channels!.names,
    total: { heads: plan.model.layers.map(() => 0), neurons: plan.model.layers.map((g) => g.ffn) },
    macs: { seqLen: plan.macs.seqLen, before: plan.macs.baseline, after: verification.macs },
    parameters: { before: countParameters(model.proto), after: countParameters(pruned.proto) },
    fileBytes: { before: fileSize(inputFiles), after: fileSize(files) },
    verification, ...(reconstruction ? { reconstruction } : {}), seconds: (performance.now() - t0) / 1000,
  };
}

function externalFiles(model: OnnxModel): string[] {
  const names = new Set<string>();
  for (const t of model.proto.graph!.initializer) {
    const loc = t.externalData.find((e) => e.key === 'location');
    if (loc) names.add(path.join(path.dirname(model.path), loc.value));
  }
  return [...names].filter((f) => fs.existsSync(f));
}
