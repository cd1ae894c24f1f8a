import type * as ort from 'onnxruntime-node';
import { loadModel, type OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import { benchFeeds } from '../data/synthetic';
import { runSession, sessionFor } from '../runtime/session';
import { OptinError } from '../errors';
import { outputDiff, toleranceAt } from './verify';

/**
 * A model analysed through an in-memory rewrite of its graph (a sequence-first stack made
 * batch-first, structure/streamLayout.ts) must compute what its file computes: both run on a probe
 * batch of 2, every output within 1e-4 of its scale (the verification tolerance).
 * @throws OptinError('unsupported') naming the output and the difference when they disagree
 */
export async function checkRewrite(model: OnnxModel, st: ModelStructure): Promise<void> {
  if (!st.sequenceFirst) return;
  const file = loadModel(model.path);
  const feeds = benchFeeds(st, 2, 16);
  const run = async (m: OnnxModel, label: string): Promise<ort.InferenceSession.OnnxValueMapType> => {
    const s = await sessionFor(m, m.proto, label);
    try {
      return await runSession(s.session, feeds, label);
    } finally {
      await s.session.release();
    }
  };
  const want = await run(file, `${model.path} (as written)`).catch((e: unknown) => {
    const shapes = Object.entries(feeds).map(([k, t]) => `${k} [${t.dims.join(', ')}]`).join(', ');
    throw new OptinError('unsupported', `${model.path}: its sequence-first stack is analysed batch-first, which is checked by running the model on a probe batch (${shapes}: dynamic axes at 16), and the model as written fails there (${e instanceof Error ? e.message.replace(`${model.path} (as written): `, '') : String(e)}); export it with fixed input dimensions`);
  });
  const got = await run(model, `${model.path} (stream batch-first)`);
  for (const name of Object.keys(want)) {
    const a = want[name]!.data, b = got[name]?.data;
    if (!(a instanceof Float32Array)) continue;
    const { diff, scale } = b instanceof Float32Array && b.length === a.length ? outputDiff(a, b) : { diff: Infinity, scale: 0 };
    if (!(diff <= toleranceAt(scale))) {
      throw new OptinError('unsupported', `${model.path}: its sequence-first stack could not be made batch-first exactly (output "${name}" differs by ${diff.toExponential(3)} at scale ${scale.toPrecision(4)}); this layout is not supported yet`);
    }
  }
}
