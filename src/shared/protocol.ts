/**
 * Messages between the extension host and the OPTIN webview. Both sides import this file;
 * every message is one member of a discriminated union on `type`.
 */

/** Per-layer summary shown in the panel. */
export interface LayerSummary {
  heads: number;
  headSize: number;
  ffn: number;
  qkv: string;
  activation: string | null;
  macs: number;
}

/** Model summary as the panel displays it. */
export interface ModelSummary {
  path: string;
  fileName: string;
  architecture: string;
  modality: string;
  hidden: number;
  norm: 'pre' | 'post';
  parameters: number;
  fileBytes: number;
  seqLen: number;
  totalMacs: number;
  layers: LayerSummary[];
}

/** Extension -> webview. */
export type HostMessage =
  /** The model was analysed; render its summary. */
  | { type: 'summary'; summary: ModelSummary }
  /** Work in progress (loading, analysing). */
  | { type: 'status'; text: string }
  /** The engine refused the model or failed; `message` is the user-facing reason. */
  | { type: 'error'; message: string };

/** Webview -> extension. */
export type WebviewMessage =
  /** The webview script has loaded and can receive messages. */
  | { type: 'ready' }
  /** The user asked to see the OPTIN output channel. */
  | { type: 'showLog' };
