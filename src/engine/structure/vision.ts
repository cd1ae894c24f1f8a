import type { GraphIndex } from '../onnx/graph';
import { attrInts } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import type { ModelInput } from './types';

/** Token count of a ViT-style model: from the position-embedding table or patches + extra tokens. */
export function visionTokenCount(ix: GraphIndex, pixel: ModelInput, hidden: number): number | undefined {
  const conv = ix.uses(pixel.name).find((u) => u.opType === 'Conv');
  if (!conv) return undefined;
  const strides = attrInts(conv, 'strides') ?? [1, 1];
  const [h, w] = [pixel.shape[2], pixel.shape[3]];
  const patches = typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0
    ? Math.floor(h / strides[0]!) * Math.floor(w / strides[1]!) : undefined;
  let frontier = [conv.output[0]!];
  let extra = 0;
  for (let hop = 0; hop < 12 && frontier.length; hop++) {
    const next: string[] = [];
    for (const v of frontier) {
      for (const u of ix.uses(v)) {
        if (u.opType === 'Shape') continue;
        if (u.opType === 'Add') {
          const other = u.input[0] === v ? u.input[1]! : u.input[0]!;
          const c = ix.constant(other);
          if (c && c.dims.length === 3 && Number(c.dims[2]) === hidden) return tensorShape(c)[1];
        }
        if (u.opType === 'Concat') {
          for (const i of u.input) {
            if (i === v) continue;
            extra += extraTokens(ix, i);
          }
        }
        next.push(...u.output);
      }
    }
    frontier = next;
  }
  return patches !== undefined ? patches + extra : undefined;
}

function extraTokens(ix: GraphIndex, value: string): number {
  const c = ix.constant(value);
  if (c && c.dims.length === 3) return tensorShape(c)[1]!;
  const p = ix.producer.get(value);
  if (p?.opType === 'Expand') {
    const t = ix.constant(p.input[0]!);
    if (t && t.dims.length === 3) return tensorShape(t)[1]!;
  }
  return 0;
}
