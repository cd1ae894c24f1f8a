/** A scoring progress callback that prints at most one line a minute: elements done, elapsed, ETA. */
export function minuteProgress(): (p: { done: number; total: number; elapsed: number; eta?: number }) => void {
  let last = 0;
  return (p) => {
    if (p.elapsed - last < 60) return;
    last = p.elapsed;
    console.log(`  ${p.done}/${p.total} elements, ${(p.elapsed / 60).toFixed(1)} min${p.eta !== undefined ? `, ETA ${(p.eta / 60).toFixed(1)} min` : ''}`);
  };
}
