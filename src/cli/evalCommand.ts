import { pct } from '../shared/format';
import { OptinError } from '../engine/errors';
import { checkFlags, intFlag, parseArgs } from './args';
import { DATA_FLAGS, dataOptions, epFlag, str, withEngine } from './common';

const USAGE = 'usage: optin eval <model.onnx> --data <labelled data, or text for a language model> [--reference <model.onnx>] [--tokenizer DIR] [--samples N] [--batch N] [--ep E] [--json]';

/** `optin eval`: accuracy on labelled data (perplexity on text for a language model) and agreement with a reference model. */
export async function runEval(argv: string[]): Promise<number> {
  const valued = [...DATA_FLAGS, 'reference', 'batch', 'ep'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'json'], 'eval');
  if (args.positional.length !== 1 || !str(args, 'data')) throw new OptinError('usage', USAGE);
  const data = { ...dataOptions(args), data: str(args, 'data')! };
  const batch = intFlag(args, 'batch');
  return withEngine(async (engine, signal) => {
    const r = await engine.evaluate(args.positional[0]!, { data, ep: epFlag(args), ...(str(args, 'reference') ? { reference: str(args, 'reference')! } : {}), ...(batch ? { batchSize: batch } : {}) }, signal);
    if (args.flags.has('json')) process.stdout.write(JSON.stringify(r) + '\n');
    else if (r.language) {
      const l = r.language;
      process.stdout.write(`perplexity ${l.perplexity.toFixed(3)} (${l.bitsPerToken.toFixed(3)} bits per token) on ${l.tokens} next tokens of ${r.examples} texts of ${r.data}\n`);
      if (r.reference?.language) process.stdout.write(`reference perplexity ${r.reference.language.perplexity.toFixed(3)} (${r.reference.language.bitsPerToken.toFixed(3)} bits per token); next-token predictions agree on ${pct(r.reference.agreement)}\n`);
    } else if (r.segmentation || r.reference?.segmentation) {
      const m = r.segmentation;
      if (m) process.stdout.write(`mIoU ${pct(m.miou)}, pixel accuracy ${pct(m.pixelAccuracy)} on ${r.examples} images (${m.pixels} labelled pixels) of ${r.data}\n`);
      if (r.reference) process.stdout.write(`${r.reference.segmentation ? `reference mIoU ${pct(r.reference.segmentation.miou)}, pixel accuracy ${pct(r.reference.segmentation.pixelAccuracy)}; ` : ''}pixel predictions agree on ${pct(r.reference.agreement)}\n`);
    } else {
      if (r.accuracy !== undefined) process.stdout.write(`accuracy ${pct(r.accuracy)} on ${r.examples} examples of ${r.data}\n`);
      if (r.reference?.cosine !== undefined) process.stdout.write(`embeddings: mean cosine similarity to the reference ${r.reference.cosine.toFixed(4)} over ${r.examples} examples of ${r.data}\n`);
      else if (r.reference) process.stdout.write(`${r.reference.accuracy !== undefined ? `reference ${pct(r.reference.accuracy)}; ` : `no labels in ${r.data}; `}predictions agree on ${pct(r.reference.agreement)} of ${r.examples} examples\n`);
    }
    return 0;
  });
}
