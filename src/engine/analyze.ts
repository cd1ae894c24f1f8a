import type { OnnxModel } from './onnx/model';
import { OptinError } from './errors';
import { analyzeStructure } from './structure/detect';
import type { MeasuredShapes } from './groups/shapes';
import type { ModelStructure } from './structure/types';
import { analyzeChannels, type ChannelStructure } from './channels/structure';
import { channelsOutside } from './hybrid/structure';
import type { InputSize } from './data/types';
import { hasDynamicSize, noSizeMessage, withInputSize } from './data/inputSize';
import { checkRewrite } from './verify/rewrite';

/**
 * What a model is pruned by: attention heads and FFN neurons (with `channels`, the coupled-channel
 * groups outside the transformer layers of a hybrid model, searched together with them), or
 * coupled channel groups alone.
 */
export type Analysis = { kind: 'transformer'; st: ModelStructure; channels?: ChannelStructure } | { kind: 'channels'; cs: ChannelStructure };

/**
 * Transformer encoders are recognised by their attention; any other graph is analysed for coupled
 * channel groups (CNNs, MLPs). Decoder-only, float16 and otherwise refused transformers stay refused.
 * Dynamic image axes are measured at `size` ({@link inputSizeFor}).
 * @throws OptinError('not-transformer') naming the transformer check and the channel propagation's stops when neither applies
 */
export async function analyzeModel(model: OnnxModel, size?: InputSize): Promise<Analysis> {
  let st: ModelStructure;
  let shapes: MeasuredShapes;
  try {
    ({ st, shapes } = await analyzeStructure(model, { ...(size ? { size } : {}) }));
  } catch (e) {
    if (!(e instanceof OptinError) || e.code !== 'not-transformer') throw e;
    try {
      return { kind: 'channels', cs: await analyzeChannels(model, size) };
    } catch (c) {
      if (c instanceof OptinError && c.code === 'not-transformer') throw new OptinError('not-transformer', `${e.message}; ${c.message.replace(`${model.path}: `, '')}`);
      throw c;
    }
  }
  await checkRewrite(model, st);
  const open = withInputSize(st.inputs, size).find(hasDynamicSize);
  if (open) throw new OptinError('unsupported', noSizeMessage(model.path, open));
  const channels = await channelsOutside(model, st, size, shapes);
  return channels ? { kind: 'transformer', st, channels } : { kind: 'transformer', st };
}
