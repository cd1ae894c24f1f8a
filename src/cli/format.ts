import * as path from 'node:path';
import type { InspectReport } from '../engine/inspect';

/** 1234567 -> "1.23 M". */
export function si(n: number): string {
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${(n / v).toFixed(2)} ${u}`;
  return String(n);
}

/** Bytes as MB/kB. */
export function bytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} kB`;
}

/** Right-aligned text table (first column left-aligned). */
export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]!) : cell.padStart(w[c]!))).join('  ')).join('\n');
}

function formatChannels(r: InspectReport): string {
  const c = r.channels!;
  const s = r.structure;
  const rows = [['block', 'channels', 'MACs'], ...c.blocks.map((b) => [b.name, String(b.channels), si(b.macs)])];
  rows.push(['total', String(c.blocks.reduce((a, b) => a + b.channels, 0)), si(c.macs.prunable)]);
  return [
    `model   ${path.basename(r.path)}  (${bytes(r.fileBytes)}${r.usesExternalData ? ' + external data' : ''}, ${si(r.parameters)} parameters)`,
    `arch    ${s.architecture}, ${s.modality}, ${c.blocks.length} prunable channel groups, opset ${s.opset}, ${s.producer || 'unknown producer'}`,
    `inputs  ${s.inputs.map((i) => `${i.name} (${i.role}, ${i.dtype} [${i.shape.join(', ')}])`).join('; ')}`,
    ...(c.inputSize ? [`size    measured at ${c.inputSize.height} x ${c.inputSize.width} (the model's height and width are dynamic and stay so when pruned; --input-size HxW to choose)`] : []),
    `MACs per example: ${si(c.macs.prunable)} prunable of ${si(c.macs.all)} in Conv/MatMul/Gemm`,
    ...(c.note ? [`note    ${c.note}`] : []),
    '',
    table(rows),
    '',
    'left alone (not prunable alone):',
    ...c.refused.map((x) => `  ${x.count} x ${x.op} (e.g. "${x.example}"): ${x.reason}`),
  ].join('\n');
}

/** Human-readable `optin inspect` output. */
export function formatInspect(r: InspectReport): string {
  if (r.channels) return formatChannels(r);
  const s = r.structure;
  const staged = s.layers.some((l) => l.shape);
  const lines = [
    `model   ${path.basename(r.path)}  (${bytes(r.fileBytes)}${r.usesExternalData ? ' + external data' : ''}, ${si(r.parameters)} parameters)`,
    `arch    ${s.architecture}, ${s.modality}, ${s.norm}-LN, hidden ${s.hidden}, ${s.layers.length} layers, opset ${s.opset}, ${s.producer || 'unknown producer'}`,
    `inputs  ${s.inputs.map((i) => `${i.name} (${i.role}, ${i.dtype} [${i.shape.join(', ')}])`).join('; ')}`,
    staged
      ? 'MACs per example at each layer\'s measured geometry (hidden x tokens; window = keys per query):'
      : `MACs at sequence length ${r.macs.seqLen}${s.visionTokens ? ' (tokens, measured)' : ''}:`,
    '',
  ];
  const rows = [['layer', ...(staged ? ['hidden x tokens', 'window'] : []), 'heads x size', 'qkv', 'ffn', 'activation', 'head MACs', 'ffn MACs', 'total']];
  s.layers.forEach((l, i) => {
    const a = l.attention;
    const m = r.macs.layers[i]!;
    rows.push([
      String(i),
      ...(staged ? [`${l.shape!.hidden} x ${l.shape!.tokens}`, l.shape!.windows > 1 ? `${l.shape!.keys} (${l.shape!.windows} windows)` : 'global'] : []),
      !a ? '-' : a.group ? `${a.heads} kv x ${a.group} q x ${a.headSize}` : `${a.heads} x ${a.headSize}${a.vHeadSize !== a.headSize ? `/${a.vHeadSize}` : ''}`,
      a ? `${a.layout}${a.folded ? ', folded' : ''}` : '(no attention)',
      String(l.ffn?.width ?? 0),
      l.ffn?.activation ?? '-',
      si(m.heads),
      si(m.ffn),
      si(m.total),
    ]);
  });
  rows.push(['total', ...(staged ? ['', ''] : []), '', '', '', '', si(r.macs.layers.reduce((x, m) => x + m.heads, 0)), si(r.macs.layers.reduce((x, m) => x + m.ffn, 0)), si(r.macs.total)]);
  const h = r.hybrid;
  const notes = (s.notes ?? []).map((n) => `\nnote    ${n}`).join('');
  if (!h) return lines.join('\n') + table(rows) + notes;
  const blocks = [['block', 'channels', 'MACs'], ...h.blocks.map((b) => [b.name, String(b.channels), si(b.macs)]), ['total', String(h.blocks.reduce((a, b) => a + b.channels, 0)), si(h.macs.prunable)]];
  return `${lines.join('\n')}${table(rows)}\n\nchannel groups outside the transformer layers (MACs per example; searched with the heads and neurons):\n\n${table(blocks)}${notes}`;
}

/** The machine-readable form of `optin inspect --json`. */
export function inspectJson(r: InspectReport): object {
  const s = r.structure;
  if (r.channels) {
    const c = r.channels;
    return {
      path: r.path, architecture: s.architecture, modality: s.modality, parameters: r.parameters, inputs: s.inputs, outputs: s.outputs,
      blocks: c.blocks.map((b) => ({ name: b.name, kind: b.kind, channels: b.channels, macs: b.macs, producers: b.producers, consumers: b.consumers })),
      refused: c.refused,
      ...(c.note ? { note: c.note } : {}),
      ...(c.inputSize ? { inputSize: c.inputSize } : {}),
      macs: { perExample: true, prunable: c.macs.prunable, all: c.macs.all },
    };
  }
  return {
    path: r.path,
    architecture: s.architecture,
    modality: s.modality,
    hidden: s.hidden,
    norm: s.norm,
    parameters: r.parameters,
    inputs: s.inputs,
    outputs: s.outputs,
    ...(s.visionTokens ? { visionTokens: s.visionTokens } : {}),
    ...(s.maxPositions ? { maxPositions: s.maxPositions } : {}),
    ...(s.causal ? { causal: s.causal } : {}),
    ...(s.notes ? { notes: s.notes } : {}),
    layers: s.layers.map((l, i) => ({
      heads: l.attention?.heads ?? 0,
      headSize: l.attention?.headSize ?? 0,
      ...(l.attention && l.attention.vHeadSize !== l.attention.headSize ? { vHeadSize: l.attention.vHeadSize } : {}),
      ffn: l.ffn?.width ?? 0,
      ...(l.ffn?.gate ? { gated: true } : {}),
      qkv: l.attention?.layout ?? null,
      ...(l.attention?.folded ? { headsFoldedIntoBatch: true } : {}),
      ...(l.attention?.group ? { queryHeadsPerKvHead: l.attention.group } : {}),
      ...(l.shape ? { hidden: l.shape.hidden, tokens: l.shape.tokens, window: l.shape.keys, windows: l.shape.windows } : {}),
      activation: l.ffn?.activation ?? null,
      macs: r.macs.layers[i]!.total,
    })),
    macs: { seqLen: r.macs.seqLen, total: r.macs.total, ...(r.hybrid ? { channels: r.hybrid.macs.prunable } : {}) },
    ...(r.hybrid ? { blocks: r.hybrid.blocks.map((b) => ({ name: b.name, kind: b.kind, channels: b.channels, macs: b.macs, producers: b.producers, consumers: b.consumers })) } : {}),
  };
}
