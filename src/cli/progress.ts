import type { ScoreProgress } from '../engine/optin/types';

function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

/** Terminal progress: a redrawn bar on a TTY, a line per 10% otherwise. */
export class ProgressBar {
  private lastDecile = -1;
  private drawn = false;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(p: ScoreProgress): void {
    if (!p.total) return;
    const frac = p.done / p.total;
    const where = p.phase === 'teacher' ? 'dense run' : `layer ${p.layer}`;
    const eta = p.eta !== undefined ? ` ETA ${clock(p.eta)}` : '';
    const text = `${p.done}/${p.total} elements, ${where}, ${clock(p.elapsed)} elapsed${eta}`;
    if (this.out.isTTY) {
      const width = 28;
      const fill = Math.round(frac * width);
      this.out.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${text}\x1b[K`);
      this.drawn = true;
    } else {
      const d = Math.floor(frac * 10);
      if (d > this.lastDecile) {
        this.lastDecile = d;
        this.out.write(`scoring: ${text}\n`);
      }
    }
  }

  done(): void {
    if (this.out.isTTY && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
