import type { ModelStructure } from '../structure/types';

/** A plain tensor for onnxruntime feeds. */
export interface TensorData {
  type: 'int64' | 'int32' | 'float32';
  dims: number[];
  data: BigInt64Array | Int32Array | Float32Array;
}

/** The calibration batch OPTIN scores on. */
export interface CalibrationBatch {
  kind: 'text' | 'images' | 'feeds' | 'synthetic';
  feeds: Record<string, TensorData>;
  batch: number;
  /** Tokens per example after padding (vision: patches + class tokens). */
  seqLen: number;
  /** 1 for real tokens, 0 for padding, row-major [batch, seqLen]. */
  tokenMask: Uint8Array;
  /** Mean number of real tokens per example (the MAC model's sequence length for text). */
  meanLength: number;
  labels?: number[];
  /** Segmentation: per-pixel class indices [batch, height, width] at the input size (255 = ignore). */
  labelMaps?: { data: Uint8Array; height: number; width: number };
  /** Set when the batch is synthetic or otherwise weak. */
  warning?: string;
  source: string;
}

/** What data loading needs to know about a model (a transformer structure or a channel analysis). */
export type DataModel = Pick<ModelStructure, 'modality' | 'inputs' | 'visionTokens' | 'maxPositions' | 'vocabSize'>;

/** Options for {@link loadCalibration}. */
export interface DataOptions {
  /** .tsv/.csv/.jsonl/.txt text, an image folder, or a feeds .jsonl; undefined = synthetic. */
  data?: string;
  tokenizer?: string;
  samples?: number;
  maxLength?: number;
  /** Preprocessor config for images (default: preprocessor_config.json next to the model). */
  preprocessor?: string;
  seed?: number;
  /** Examples to pass over first (evaluation on data not used for calibration: skip = calibration samples). */
  skip?: number;
  /** 'chosen' when the user picked synthetic data on purpose (changes the warning's wording). */
  synthetic?: 'chosen';
  /** Image height and width for a model whose image axes are dynamic (default: the preprocessor config's size). */
  inputSize?: InputSize;
}

/** Image height and width a model with dynamic spatial axes is analysed, calibrated and timed at. */
export interface InputSize {
  height: number;
  width: number;
}
