import { loadModel } from '/work/main/src/engine/onnx/model';
import { detectStructure } from '/work/main/src/engine/structure/detect';
for (const f of process.argv.slice(2)) {
  try {
    const s = detectStructure(loadModel(f));
    console.log('==', f.split('/').slice(-2).join('/'), s.layers.length, 'layers');
    for (const l of s.layers.slice(0, 2)) {
      const a = l.attention;
      console.log(' L', l.index, a.qkv.kind, (a.qkv as any).order ?? '', 'out', a.output.op, a.output.transposed, a.output.einsum ?? '', 'bias', a.output.biasNode);
      for (const x of a.shapeSites) console.log('   ', JSON.stringify(x));
      if (l.ffn) console.log('   ffn', l.ffn.up.op, l.ffn.up.transposed, l.ffn.up.biasNode, '|', l.ffn.down.op, l.ffn.down.transposed, l.ffn.down.biasNode, l.ffn.activation);
    }
  } catch (e) { console.log(f, 'ERR', (e as Error).message); }
}
