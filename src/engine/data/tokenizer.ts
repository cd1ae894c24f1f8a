import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { OptinError } from '../errors';

/** A loaded Hugging Face tokenizer and its limits. */
export interface LoadedTokenizer {
  tokenizer: Tokenizer;
  dir: string;
  /** model_max_length from tokenizer_config.json, when given. */
  maxLength?: number;
  padId: number;
}

/**
 * Load tokenizer.json + tokenizer_config.json from a folder (the model's folder by default).
 * @throws OptinError('data') when the files are missing or unreadable
 */
export function loadTokenizer(dir: string): LoadedTokenizer {
  const tj = path.join(dir, 'tokenizer.json');
  const tc = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(tj)) {
    throw new OptinError('data', `no tokenizer.json in ${dir}; put the model's Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) next to it or pass --tokenizer DIR`);
  }
  let json: Record<string, unknown>;
  let config: Record<string, unknown> = {};
  try {
    json = JSON.parse(fs.readFileSync(tj, 'utf8')) as Record<string, unknown>;
    if (fs.existsSync(tc)) config = JSON.parse(fs.readFileSync(tc, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new OptinError('data', `cannot parse the tokenizer in ${dir}: ${(e as Error).message}`);
  }
  const tokenizer = new Tokenizer(json, config);
  const padToken = typeof config.pad_token === 'string' ? config.pad_token : '[PAD]';
  const padId = tokenizer.encode(padToken, { add_special_tokens: false }).ids[0] ?? 0;
  const ml = Number(config.model_max_length);
  return { tokenizer, dir, ...(Number.isFinite(ml) && ml > 0 && ml < 1e6 ? { maxLength: ml } : {}), padId };
}
