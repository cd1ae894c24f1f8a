import type { GraphIndex } from '../onnx/graph';
import type { TensorProto, ValueInfoProto } from '../onnx/schema';
import { DataType } from '../onnx/schema';
import type { ModelInput } from './types';
import { CACHE_NAME } from './decoder';

function dtypeOf(v: ValueInfoProto): ModelInput['dtype'] {
  const t = v.type?.value.case === 'tensorType' ? v.type.value.value.elemType : undefined;
  switch (t) {
    case DataType.INT64: return 'int64';
    case DataType.INT32: return 'int32';
    case DataType.FLOAT: return 'float32';
    case DataType.FLOAT16: return 'float16';
    default: return 'other';
  }
}

function shapeOf(v: ValueInfoProto): Array<number | string> {
  if (v.type?.value.case !== 'tensorType') return [];
  const dims = v.type.value.value.shape?.dim ?? [];
  return dims.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : -1));
}

const NAME_ROLES: Array<[RegExp, ModelInput['role']]> = [
  [/input_?ids|^ids$|tokens?$/i, 'input_ids'],
  [/attention_?mask|input_?mask|^mask$/i, 'attention_mask'],
  [/token_?type|segment/i, 'token_type_ids'],
  [/position_?ids/i, 'position_ids'],
  [/pixel|image|^input$/i, 'pixel_values'],
];

/** Graph inputs (initializers excluded) with their roles. */
export function modelInputs(ix: GraphIndex): ModelInput[] {
  const out: ModelInput[] = [];
  for (const v of ix.graph.input) {
    if (ix.initializer.has(v.name)) continue;
    const dtype = dtypeOf(v);
    const shape = shapeOf(v);
    let role: ModelInput['role'] = NAME_ROLES.find(([re]) => re.test(v.name))?.[1] ?? 'other';
    if ((dtype === 'float32' || dtype === 'float16') && CACHE_NAME.test(v.name) && shape.length >= 3) role = 'past_key_values';
    else if (dtype === 'float32' || dtype === 'float16') role = shape.length === 4 ? 'pixel_values' : 'hidden_states';
    else if (role === 'pixel_values') role = 'other';
    out.push({ name: v.name, role, dtype, shape });
  }
  const ints = out.filter((i) => i.dtype === 'int64' || i.dtype === 'int32');
  if (ints.length && !ints.some((i) => i.role === 'input_ids')) {
    const gathered = ints.find((i) => ix.uses(i.name).some((u) => u.opType === 'Gather' && u.input[1] === i.name));
    if (gathered && gathered.role === 'other') gathered.role = 'input_ids';
  }
  return out;
}

/** The word-embedding table that token ids `idsName` index (a Gather of a constant 2-D table), if any. */
export function wordEmbedding(ix: GraphIndex, idsName: string): TensorProto | undefined {
  return ix.uses(idsName).map((u) => (u.opType === 'Gather' ? ix.constant(u.input[0]!) : undefined)).find((t) => t && t.dims.length === 2);
}
