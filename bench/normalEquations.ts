/**
 * Least-squares sums of the channel repair (run on demand: npm run bench:normal-equations): the
 * normal equations of consumers of 576 and 1,152 features on 16,384 rows, summed by a float64
 * JavaScript loop and by onnxruntime's float64 MatMul, side by side.
 */
import { normalEquations } from '../src/engine/repair/leastSquares';
import { normalEquationsOnRuntime } from '../src/engine/repair/normalEquations';
async function main(): Promise<void> {
  for (const [rows, F, M] of [[16384, 576, 64], [16384, 1152, 128]] as const) {
    const p = { rows, features: F, outputs: M, bias: true, row: (r: number, out: Float64Array) => { for (let f = 0; f < F; f++) out[f] = Math.sin(r + f); }, y: (r: number, o: number) => Math.cos(r * o), w0: () => 0, b0: () => 0 };
    await normalEquationsOnRuntime({ ...p, rows: 10 });
    let t = performance.now(); normalEquations(p); const js = performance.now() - t;
    t = performance.now(); await normalEquationsOnRuntime(p); const rt = performance.now() - t;
    console.log(`rows ${rows}, features ${F}, outputs ${M}: JavaScript ${(js / 1000).toFixed(2)} s, onnxruntime ${(rt / 1000).toFixed(2)} s: ${(js / rt).toFixed(1)}x`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
