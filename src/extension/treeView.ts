import { formatBudget } from '../shared/format';
import * as path from 'node:path';
import { distinctNames } from './names';
import * as vscode from 'vscode';
import type { ModelSession, Sessions } from './sessions';
import { importanceRanks } from '../shared/ranks';
import { groupName } from '../engine/plan/schema';

type Node =
  | { kind: 'model'; s: ModelSession }
  | { kind: 'layer'; s: ModelSession; layer: number }
  | { kind: 'head'; s: ModelSession; layer: number; head: number };

/** The "OPTIN" tree: scored models, their layers, and every head with score, rank and fate. */
export class ImportanceTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: vscode.Disposable;

  constructor(private readonly sessions: Sessions) {
    this.sub = sessions.onDidChange(() => this.emitter.fire(undefined));
  }

  getChildren(n?: Node): Node[] {
    if (!n) return this.sessions.all().filter((s) => s.scores).map((s) => ({ kind: 'model', s }));
    if (n.kind === 'model') return n.s.scores!.heads.map((_, layer) => ({ kind: 'layer', s: n.s, layer }));
    if (n.kind === 'layer') return n.s.scores!.heads[n.layer]!.map((_, head) => ({ kind: 'head', s: n.s, layer: n.layer, head }));
    return [];
  }

  getTreeItem(n: Node): vscode.TreeItem {
    const s = n.s;
    if (n.kind === 'model') {
      const name = distinctNames(this.sessions.all().filter((x) => x.scores).map((x) => x.uri.fsPath)).get(s.uri.fsPath) ?? path.basename(s.uri.fsPath);
      const item = new vscode.TreeItem(name, vscode.TreeItemCollapsibleState.Expanded);
      const unit = s.plan?.model.channels ? 'channels' : 'heads';
      const kept = (l: { heads: number; neurons: number }): number => (unit === 'channels' ? l.neurons : l.heads);
      const total = (g: { heads: number; ffn: number }): number => (unit === 'channels' ? g.ffn : g.heads);
      item.description = s.plan ? `${formatBudget(s.plan.budget)}: ${s.plan.layers.reduce((a, l) => a + kept(l), 0)}/${s.plan.model.layers.reduce((a, g) => a + total(g), 0)} ${unit} kept` : 'scored';
      item.resourceUri = s.uri;
      item.contextValue = 'optinModel';
      return item;
    }
    if (n.kind === 'layer') {
      const kept = s.plan?.layers[n.layer];
      const group = groupName(s.scores!.model, n.layer);
      const item = new vscode.TreeItem(group ?? `layer ${n.layer}`, group ? vscode.TreeItemCollapsibleState.None : vscode.TreeItemCollapsibleState.Collapsed);
      item.description = !kept ? '' : group ? `${kept.neurons}/${s.plan!.model.layers[n.layer]!.ffn} channels` : `${kept.heads}/${s.plan!.model.layers[n.layer]!.heads} heads, ${kept.neurons}/${s.plan!.model.layers[n.layer]!.ffn} neurons`;
      item.id = `${s.uri.fsPath}#${n.layer}`;
      return item;
    }
    const score = s.scores!.heads[n.layer]![n.head]!;
    const rank = importanceRanks(s.scores!.heads)[n.layer]![n.head]!;
    const total = s.scores!.heads.flat().length;
    const kept = s.plan ? s.plan.keep.heads[n.layer]!.includes(n.head) : undefined;
    const item = new vscode.TreeItem(`head ${n.head}`, vscode.TreeItemCollapsibleState.None);
    item.description = `${score.toPrecision(3)} · rank ${rank}/${total}${kept === undefined ? '' : kept ? ' · kept' : ' · pruned'}`;
    item.tooltip = `Layer ${n.layer}, head ${n.head}\nOPTIN importance ${score}\nrank ${rank} of ${total} heads${kept === undefined ? '' : `\n${kept ? 'kept' : 'pruned'} (${formatBudget(s.plan!.budget)})`}`;
    item.iconPath = new vscode.ThemeIcon(kept === false ? 'circle-slash' : 'pass', new vscode.ThemeColor(kept === false ? 'errorForeground' : 'testing.iconPassed'));
    item.id = `${s.uri.fsPath}#${n.layer}#${n.head}`;
    item.command = { command: 'optin.revealHead', title: 'Reveal in heatmap', arguments: [s.uri.fsPath, n.layer, n.head] };
    return item;
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}
