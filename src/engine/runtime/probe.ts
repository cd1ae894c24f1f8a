import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphBuilder, modelBytes } from '../graph/builder';
import { GraphProtoSchema } from '../onnx/schema';
import { mulberry32 } from '../optin/random';

/** Largest difference from the CPU provider a trusted provider may show on the probe graph. */
export const PROBE_TOLERANCE = 1e-3;

/** A small graph with the ops every encoder uses (MatMul, Add, Erf-GELU, Softmax), serialized. */
export function probeModel(): Uint8Array {
  const rnd = mulberry32(7);
  const graph = create(GraphProtoSchema, { name: 'optin-probe' });
  const b = new GraphBuilder(graph, 17);
  const x = b.input('x', [4, 32]);
  const w = b.floats(Float32Array.from({ length: 32 * 32 }, () => rnd() - 0.5), [32, 32], 'w');
  const bias = b.floats(Float32Array.from({ length: 32 }, () => rnd() - 0.5), [32], 'b');
  const h = b.node('Add', [b.node('MatMul', [x, w]), bias]);
  const erf = b.node('Erf', [b.node('Mul', [h, b.floats(Float32Array.of(Math.SQRT1_2), [], 'inv_sqrt2')])]);
  const gelu = b.node('Mul', [b.node('Mul', [h, b.node('Add', [erf, b.floats(Float32Array.of(1), [], 'one')])]), b.floats(Float32Array.of(0.5), [], 'half')]);
  const y = b.node('Softmax', [gelu], { axis: -1 });
  b.output(y);
  return modelBytes(graph, 'optin-probe');
}

const verdicts = new Map<string, Promise<string | undefined>>();

async function runProbe(ep: string, bytes: Uint8Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'], logSeverityLevel: 3 });
  try {
    const rnd = mulberry32(11);
    const x = new ort.Tensor('float32', Float32Array.from({ length: 4 * 32 }, () => 4 * (rnd() - 0.5)), [4, 32]);
    const out = await s.run({ x });
    return Float32Array.from(out[s.outputNames[0]!]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

/**
 * Run the probe graph on `ep` and on the CPU and compare: a provider whose driver loads but computes
 * wrong is rejected. Cached per provider for the process.
 * @returns undefined when the provider agrees with the CPU, else the reason it is rejected
 */
export function probeProvider(ep: string): Promise<string | undefined> {
  const key = `${ep}|${process.env.OPTIN_TEST_PROBE_PERTURB ?? ''}|${process.env.VK_ICD_FILENAMES ?? ''}`;
  let v = verdicts.get(key);
  if (!v) {
    v = (async () => {
      const bytes = probeModel();
      const [ref, got] = await Promise.all([runProbe('cpu', bytes), runProbe(ep, bytes)]);
      // Test hook: make the provider look broken, to exercise the rejection path end to end.
      if (process.env.OPTIN_TEST_PROBE_PERTURB === ep) got[0] = got[0]! + 0.5;
      let diff = 0;
      for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i]! - got[i]!));
      if (!(diff <= PROBE_TOLERANCE)) return `its results differ from the CPU provider by ${diff.toExponential(2)} on a probe graph (tolerance ${PROBE_TOLERANCE})`;
      return undefined;
    })();
    verdicts.set(key, v);
  }
  return v;
}
