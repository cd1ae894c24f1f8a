import type { AppliedView, DataInfo, FrontierView, HostMessage, ModelSummary, PanelPhase, PlanView } from '../src/shared/protocol';

/** Everything the panel shows; saved with setState so a reloaded webview comes back as it was. */
export interface State {
  phase: PanelPhase;
  /** Why the panel is refused / failed / cancelled, or what is running. */
  message?: string;
  summary?: ModelSummary;
  heads: Array<number[] | undefined>;
  neurons: Array<number[] | undefined>;
  /** Colour-scale anchors (median score of the first layer to arrive, per kind), fixed for a run. */
  anchor?: { heads?: number; neurons?: number };
  data?: DataInfo;
  warning?: string;
  plan?: PlanView;
  applied?: AppliedView;
  /** The last sweep's frontier (cleared when scoring starts again). */
  frontier?: FrontierView;
  progress?: { done: number; total: number; eta?: number };
}

/** A panel before the host has said anything. */
export const INITIAL: State = { phase: 'analysing', heads: [], neurons: [] };

function median(xs: number[]): number {
  const s = xs.filter((x) => x > 0).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 1;
}

/** Each kind's anchor is fixed by the first scores of that kind to arrive (heads may come before neurons). */
function withAnchor(s: State, heads: number[] | undefined, neurons: number[] | undefined): State['anchor'] {
  const h = s.anchor?.heads ?? (heads?.length ? median(heads) : undefined);
  const n = s.anchor?.neurons ?? (neurons?.length ? median(neurons) : undefined);
  return h === undefined && n === undefined ? undefined : { ...(h !== undefined ? { heads: h } : {}), ...(n !== undefined ? { neurons: n } : {}) };
}

/** The panel's state after a host message (pure: the webview renders whatever this returns). */
export function reduce(s: State, m: HostMessage): State {
  switch (m.type) {
    case 'summary':
      return { ...s, summary: m.summary, phase: s.phase === 'analysing' || s.phase === 'refused' ? 'idle' : s.phase, message: undefined };
    case 'phase': {
      const next: State = { ...s, phase: m.phase, message: m.message };
      if (m.phase === 'scoring') return { ...next, heads: [], neurons: [], anchor: undefined, progress: undefined, plan: undefined, applied: undefined, frontier: undefined, data: undefined, warning: undefined };
      if (m.phase === 'cancelled' || m.phase === 'failed') return { ...next, progress: undefined, ...(s.data ? {} : { heads: [], neurons: [], anchor: undefined }) };
      if (m.phase === 'applying') return { ...next, applied: undefined };
      return next;
    }
    case 'progress':
      return { ...s, progress: { done: m.done, total: m.total, ...(m.eta !== undefined ? { eta: m.eta } : {}) } };
    case 'layerScores': {
      const heads = [...s.heads], neurons = [...s.neurons];
      heads[m.layer] = m.heads;
      if (m.neurons) neurons[m.layer] = m.neurons;
      return { ...s, heads, neurons, anchor: withAnchor(s, m.heads, m.neurons) };
    }
    case 'scores': {
      const first = m.scores.heads.findIndex((r) => r.length > 0);
      const anchor = s.phase === 'scoring' && s.anchor ? s.anchor : { heads: median(m.scores.heads[Math.max(0, first)] ?? []), neurons: median(m.scores.neurons[Math.max(0, first)] ?? []) };
      return { ...s, heads: m.scores.heads, neurons: m.scores.neurons, anchor, data: m.data, warning: m.warning, progress: undefined, phase: s.phase === 'scoring' || s.phase === 'idle' || s.phase === 'analysing' ? 'scored' : s.phase };
    }
    case 'plan': {
      const moved = !s.plan || s.plan.budget !== m.plan.budget;
      const applied = moved && s.applied && s.applied.budget !== m.plan.budget ? undefined : s.applied;
      return { ...s, plan: m.plan, applied, phase: s.phase === 'applied' && !applied ? 'scored' : s.phase };
    }
    case 'applied':
      return { ...s, applied: m.result, phase: 'applied', message: undefined };
    case 'frontier':
      return { ...s, frontier: m.frontier, phase: s.phase === 'applying' ? 'scored' : s.phase, message: undefined };
    case 'reveal':
      return s;
  }
}
