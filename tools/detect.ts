import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
for (const f of process.argv.slice(2)) {
  try {
    const s = detectStructure(loadModel(f));
    console.log(f.split('/').slice(-2).join('/'), s.architecture, s.modality, s.norm, 'D', s.hidden, 'L', s.layers.length,
      s.layers.map((l) => `${l.attention.heads}x${l.attention.headSize}${l.attention.vHeadSize !== l.attention.headSize ? '/' + l.attention.vHeadSize : ''}:${l.attention.qkv.kind}:${l.ffn?.width ?? 0}:${l.ffn?.activation ?? '-'}:${l.norm1?.kind ?? '?'}/${l.norm2?.kind ?? '?'}:sites${l.attention.shapeSites.length}`).join(' '),
      'tok', s.visionTokens ?? s.maxPositions);
  } catch (e) { console.log(f.split('/').slice(-2).join('/'), 'ERR', (e as Error).message); }
}
