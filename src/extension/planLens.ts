import { formatBudget } from '../shared/format';
import * as vscode from 'vscode';
import type { PlanFile } from '../engine/plan/schema';
import { importanceRanks } from '../shared/ranks';

/** JSON path of every value in a document, located by character offset (enough for plan files). */
export function pathAt(text: string, offset: number): Array<string | number> | undefined {
  const stack: Array<{ kind: 'obj' | 'arr'; key: string | number; index: number }> = [];
  let pendingKey: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const str = text.slice(i + 1, j);
      const top = stack[stack.length - 1];
      if (top?.kind === 'obj' && pendingKey === undefined && /^\s*:/.test(text.slice(j + 1, j + 10))) pendingKey = str;
      i = j;
      continue;
    }
    if (c === '{' || c === '[') {
      const top = stack[stack.length - 1];
      const key = top?.kind === 'arr' ? top.index : (pendingKey ?? '');
      pendingKey = undefined;
      stack.push({ kind: c === '{' ? 'obj' : 'arr', key, index: 0 });
    } else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.kind === 'arr') top.index++;
      pendingKey = undefined;
    } else if (/[-0-9]/.test(c)) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j]!)) j++;
      if (offset >= i && offset <= j) {
        const top = stack[stack.length - 1];
        return [...stack.slice(1).map((f) => f.key), top?.kind === 'arr' ? top.index : (pendingKey ?? '')];
      }
      i = j - 1;
    }
  }
  return undefined;
}

function parsePlan(doc: vscode.TextDocument): PlanFile | undefined {
  const text = doc.getText();
  if (!text.includes('"optin-plan"')) return undefined;
  try {
    const j = JSON.parse(text) as PlanFile;
    return j.schema === 'optin-plan' ? j : undefined;
  } catch {
    return undefined;
  }
}

/** Hover text for the head a path points at (`keep.heads[l][i]` or `scores.heads[l][h]`). */
export function headHover(plan: PlanFile, p: Array<string | number>): string | undefined {
  let layer: number, head: number;
  if (p[0] === 'keep' && p[1] === 'heads' && typeof p[2] === 'number' && typeof p[3] === 'number') {
    layer = p[2];
    head = plan.keep.heads[layer]?.[p[3]] ?? -1;
  } else if (p[0] === 'scores' && p[1] === 'heads' && typeof p[2] === 'number' && typeof p[3] === 'number') {
    layer = p[2];
    head = p[3];
  } else return undefined;
  const score = plan.scores.heads[layer]?.[head];
  if (score === undefined) return undefined;
  const rank = importanceRanks(plan.scores.heads)[layer]![head]!;
  const kept = plan.keep.heads[layer]!.includes(head);
  return `**OPTIN** layer ${layer}, head ${head}: importance ${score.toPrecision(4)}, rank ${rank} of ${plan.scores.heads.flat().length} heads, **${kept ? 'kept' : 'pruned'}** (${formatBudget(plan.budget)})`;
}

/** Hovers on head indices/scores and CodeLenses with per-layer fates in OPTIN plan JSON files. */
export class PlanLens implements vscode.HoverProvider, vscode.CodeLensProvider {
  provideHover(doc: vscode.TextDocument, pos: vscode.Position): vscode.Hover | undefined {
    const plan = parsePlan(doc);
    if (!plan) return undefined;
    const p = pathAt(doc.getText(), doc.offsetAt(pos));
    const text = p && headHover(plan, p);
    return text ? new vscode.Hover(new vscode.MarkdownString(text)) : undefined;
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const plan = parsePlan(doc);
    if (!plan) return [];
    const text = doc.getText();
    const lenses: vscode.CodeLens[] = [];
    const at = (needle: string): vscode.Range | undefined => {
      const i = text.indexOf(needle);
      return i < 0 ? undefined : new vscode.Range(doc.positionAt(i), doc.positionAt(i));
    };
    const top = at('"keep"');
    const heads = plan.layers.reduce((a, l) => a + l.heads, 0), allHeads = plan.model.layers.reduce((a, g) => a + g.heads, 0);
    const neurons = plan.layers.reduce((a, l) => a + l.neurons, 0), allNeurons = plan.model.layers.reduce((a, g) => a + g.ffn, 0);
    if (top) lenses.push(new vscode.CodeLens(top, { title: `OPTIN: keeps ${heads}/${allHeads} heads, ${neurons}/${allNeurons} neurons, ${(100 * plan.macs.ratio).toFixed(1)}% of MACs (plan: ${formatBudget(plan.budget)})`, command: '' }));
    const layers = at('"layers"');
    if (layers) {
      for (const [l, k] of plan.layers.entries()) {
        const pruned = Array.from({ length: plan.model.layers[l]!.heads }, (_, h) => h).filter((h) => !plan.keep.heads[l]!.includes(h));
        lenses.push(new vscode.CodeLens(layers, { title: `layer ${l}: ${k.heads} heads kept${pruned.length ? `, pruned ${pruned.join(' ')}` : ''}`, command: '' }));
      }
    }
    return lenses;
  }
}
