import type { InspectReport } from '../../engine/inspect';

/** Request from the extension host to the engine worker. */
export type WorkerRequest = { id: number; kind: 'inspect'; path: string; seqLen?: number };

/** Reply from the engine worker; errors carry the OptinError code when there is one. */
export type WorkerReply =
  | { id: number; ok: true; kind: 'inspect'; report: InspectReport }
  | { id: number; ok: false; code: string; message: string };
