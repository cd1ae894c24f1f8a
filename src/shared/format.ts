/** Wording shared by the extension, the webview and the CLI, so every place says the same thing. */

/** Seconds left as one phrase: "about 40 s left", "about 16 min left"; '' when unknown. */
export function formatEta(seconds?: number): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '';
  return seconds >= 90 ? `about ${Math.round(seconds / 60)} min left` : `about ${Math.max(1, Math.round(seconds))} s left`;
}

/** The one name of a budget: a fraction of MACs kept, e.g. 0.6 -> "keep 60% of MACs". */
export function formatBudget(budget: number): string {
  return `keep ${Math.round(budget * 100)}% of MACs`;
}

/** 0.7924 -> "79.24%". */
export function pct(x: number, digits = 2): string {
  return `${(100 * x).toFixed(digits)}%`;
}
