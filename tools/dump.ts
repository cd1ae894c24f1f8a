import { loadModel } from '../src/engine/onnx/model';
import { GraphIndex, attr } from '../src/engine/onnx/graph';
import { tensorShape } from '../src/engine/onnx/tensor';
const m = loadModel(process.argv[2]!);
const g = m.proto.graph!;
const ix = new GraphIndex(g, m.ext);
console.log('opset', m.proto.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(' '), 'producer', m.proto.producerName, m.proto.producerVersion);
for (const i of g.input) if (!ix.initializer.has(i.name)) console.log('IN', i.name, JSON.stringify(i.type?.value, (_k, v) => typeof v === "bigint" ? Number(v) : v).replace(/"\$typeName":"[^"]*",/g, ""));
for (const o of g.output) console.log('OUT', o.name);
const lim = Number(process.argv[3] ?? 1e9);
g.node.slice(0, lim).forEach((n, k) => {
  const ins = n.input.map((x) => { const c = ix.constant(x); return c ? `${x}[${tensorShape(c)}]${c.dims.length<=1 && c.dims.length>=0 && Number(c.dims[0]??1)<=8 && c.dataType===7 ? '='+ix.constInts(x) : ''}` : x; });
  const at = n.attribute.map((a) => `${a.name}=${JSON.stringify(attr(n, a.name), (_k, v) => typeof v === 'bigint' ? Number(v) : (v && v.dims ? '<tensor>' : v))}`);
  console.log(k, n.opType, n.domain || '', ins.join(', '), '->', n.output.join(', '), at.join(' '));
});
