import type { EvalReport } from './evaluate';

/** Points of accuracy, mIoU or agreement a pruned model may lose before every report says so in words. */
export const QUALITY_DROP_POINTS = 5;

/** Relative rise of a language model's perplexity before every report says so in words. */
export const PERPLEXITY_RISE = 0.1;

/**
 * One sentence when a pruned model is much worse than its original on the evaluation (more than
 * {@link QUALITY_DROP_POINTS} points of accuracy, mIoU, or of agreement with the original's
 * predictions when there are no labels; a language model's perplexity up by more than
 * {@link PERPLEXITY_RISE}), with what to try; undefined otherwise.
 * @param how what the plan did (channel groups cut without a repair get the repair suggested) and how
 * the user turns the repair on where the sentence is shown (`--tune`, a setting); `unrepairable`:
 * no repair applies (block-quantized weights), none is suggested
 */
export function qualityWarning(e: EvalReport | undefined, how: { channels: boolean; repaired: boolean; repair?: string; unrepairable?: boolean }): string | undefined {
  const ref = e?.reference;
  if (!e || !ref) return undefined;
  const pts = (x: number): string => `${(100 * x).toFixed(1)}`;
  let what: string | undefined;
  if (e.language && ref.language) {
    const rise = e.language.perplexity / ref.language.perplexity - 1;
    if (rise > PERPLEXITY_RISE) what = `raised the perplexity by ${(100 * rise).toFixed(1)}% (${ref.language.perplexity.toFixed(2)} -> ${e.language.perplexity.toFixed(2)}) on ${e.language.tokens} next tokens`;
  } else if (e.segmentation && ref.segmentation && ref.segmentation.miou - e.segmentation.miou > QUALITY_DROP_POINTS / 100) {
    what = `lost ${pts(ref.segmentation.miou - e.segmentation.miou)} points of mIoU (${pts(ref.segmentation.miou)}% -> ${pts(e.segmentation.miou)}%) on ${e.examples} examples`;
  } else if (!e.segmentation && e.accuracy !== undefined && ref.accuracy !== undefined && ref.accuracy - e.accuracy > QUALITY_DROP_POINTS / 100) {
    what = `lost ${pts(ref.accuracy - e.accuracy)} points of accuracy (${pts(ref.accuracy)}% -> ${pts(e.accuracy)}%) on ${e.examples} examples`;
  } else if (e.accuracy === undefined && !e.segmentation && 1 - ref.agreement > QUALITY_DROP_POINTS / 100) {
    what = `predicts what the original predicts on only ${pts(ref.agreement)}% of ${e.examples} examples`;
  }
  if (!what) return undefined;
  const repair = how.repair ?? '--tune';
  const fix = how.channels && !how.repaired
    ? `channel groups were cut without a repair: turn it on (${repair}), or keep more MACs`
    : `keep more MACs (a larger budget)${how.repaired || how.unrepairable ? '' : `, or turn on the repair (${repair})`}`;
  return `the pruned model ${what}; ${fix}`;
}
