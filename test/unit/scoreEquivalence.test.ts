import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { scoreModel } from '../../src/engine/optin/scorer';
import { OPTIN_DEFAULTS, type RawLosses } from '../../src/engine/optin/types';
import { klBound, mdBound, naiveRawTerms } from './naiveOptin';
import { FIXTURES, ROOT, fixture } from './helpers';

/** The paper's balance (docs/method.md §2) written plainly from the raw terms. */
function combine(raw: RawLosses[], decay: number, L: number): number[][] {
  const scales: number[] = [];
  return raw.map((r, l) => r.md.map((md, i) => {
    const kl = r.kl[i]!;
    let scale = scales.length ? scales.reduce((a, b) => a + b, 0) / scales.length : 1;
    if (md > kl && kl > 0) { scale = 10 ** Math.trunc(Math.log10(md) - Math.log10(kl) - 1); scales.push(scale); }
    return (md + scale * kl) * decay * (l === L - 1 ? 0.5 : 1);
  }));
}

const CASES: Array<[string, () => { data?: string; samples: number }, { rankOne?: boolean }?]> = [
  ['torch-bert-like-random/model-opset17.onnx', () => ({ samples: 6 })],
  // Neurons from their activations (where the rank-1 start after the second matrix does not apply).
  ['torch-bert-like-random/model-opset17.onnx', () => ({ samples: 6 }), { rankOne: false }],
  ['vit-digits/model-opset17.onnx', () => ({ data: path.join(FIXTURES, 'data', 'digits', 'test'), samples: 10 })],
  ['ort-bert-toy/model.ort-fused.onnx', () => ({ samples: 4 })],
  ['onnx-attention-random/model-opset23.onnx', () => ({ samples: 4 })],
  // Sentences of 3 to 23 tokens: scored in length buckets, against the reference's one padded batch.
  ['llama-sst2/model.onnx', () => ({ data: path.join(FIXTURES, 'models', 'llama-sst2', 'train.txt'), samples: 6 })],
  // The same decoder after onnxruntime-style fusion (GroupQueryAttention, SkipSimplifiedLayerNormalization).
  ['llama-sst2/model.ort-gqa.onnx', () => ({ data: path.join(FIXTURES, 'models', 'llama-sst2', 'train.txt'), samples: 6 })],
  // ... and with MultiHeadAttention + RotaryEmbedding (every query head with its own copy of its key/value head).
  ['llama-sst2/model.ort-mha.onnx', () => ({ data: path.join(FIXTURES, 'models', 'llama-sst2', 'train.txt'), samples: 6 })],
];

describe('exact OPTIN scores: suffix reuse + batched variants equal a naive reference that masks by editing weights', () => {
  for (const [rel, data, opts] of CASES) {
    it(`${rel}${opts?.rankOne === false ? ' (neurons from the activations)' : ''}: every head's and neuron's raw terms within their float32 bound; balanced as the paper says`, async () => {
      const model = loadModel(fixture(rel));
      const st = await detectStructure(model);
      const batch = await loadCalibration(model.path, st, data());
      const fast = await scoreModel(model, st, batch, { chunkTokens: Number(process.env.OPTIN_CHUNK ?? 300), ...opts });
      const naive = await naiveRawTerms(model, st, batch);
      if (rel.startsWith('llama')) assert.ok((fast.calibration.buckets?.length ?? 0) > 1, 'sentences of different lengths are scored in length buckets');
      assert.ok(naive.rows < OPTIN_DEFAULTS.tokenSample, 'the fixture has fewer real tokens than the sample: both sides use every row');
      assert.equal(fast.tokenRows, naive.rows);
      const L = st.layers.length;
      let worst = 0;
      for (const kind of ['heads', 'neurons'] as const) {
        naive[kind].forEach((layer, l) => {
          const compared = l === L - 1 ? 1 : L - l - 1;
          layer.forEach((e, i) => {
            const f = fast.raw[kind][l]!;
            const where = `${kind} layer ${l} element ${i}`;
            const bm = mdBound(e, st.hidden, naive.rows, compared);
            const bk = klBound(e, st.hidden, naive.logitScale);
            const dm = Math.abs(f.md[i]! - e.md);
            const dk = Math.abs(f.kl[i]! - e.kl);
            assert.ok(dm <= bm, `${where}: md ${f.md[i]} vs reference ${e.md}, difference ${dm.toExponential(2)} above its bound ${bm.toExponential(2)}`);
            assert.ok(dk <= bk, `${where}: kl ${f.kl[i]} vs reference ${e.kl}, difference ${dk.toExponential(2)} above its bound ${bk.toExponential(2)}`);
            worst = Math.max(worst, bm ? dm / bm : 0, bk ? dk / bk : 0);
          });
        });
      }
      if (process.env.OPTIN_DEBUG_SCORES) console.log(`${rel}: worst difference / bound ${worst.toFixed(4)}`);
      assert.deepEqual(fast.heads, combine(fast.raw.heads, 0.5, L));
      assert.deepEqual(fast.neurons, combine(fast.raw.neurons, 1, L));
      assert.ok(naive.neurons.flat().some((e) => e.md > 0) && naive.heads.flat().some((e) => e.md > 0), 'the reference sees every kind of element change the features');
    });
  }
});

describe('the naive reference is independent of the scorer', () => {
  it('imports nothing of the scorer\'s masking, row sampling, loss graph or balance', () => {
    for (const f of ['naiveOptin.ts', 'weightEdits.ts']) {
      const imports = [...fs.readFileSync(path.join(ROOT, 'test', 'unit', f), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      assert.ok(imports.length > 3, `${f} imports read`);
      for (const i of imports) assert.ok(!/optin\/(instrument|scorer|lossGraph|balance|teacher|fast)|graph\/(builder|surgery)/.test(i), `${f} imports ${i}`);
    }
  });
});
