#!/usr/bin/env bash
# Prove CI passes on a busy machine: clone HEAD into a fresh folder and run .ci/run there N times in
# a row (default 3) while two background node processes keep running onnxruntime on the SST-2 BERT.
# Prints each run's wall time and result line. Usage: bash scripts/ci-under-load.sh [N]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
work="$(mktemp -d /tmp/optin-ci-load.XXXXXX)"
git clone -q "$root" "$work/repo"
[[ -d "$root/../shared" ]] && ln -s "$root/../shared" "$work/shared"
load_js="$work/load.js"
cat > "$load_js" <<'JS'
const ort = require(process.argv[2]);
(async () => {
  const s = await ort.InferenceSession.create(process.argv[3]);
  const n = 32 * 64;
  const ids = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(1000 + (i % 5000))), [32, 64]);
  const ones = new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [32, 64]);
  const zeros = new ort.Tensor('int64', new BigInt64Array(n), [32, 64]);
  for (;;) await s.run({ input_ids: ids, attention_mask: ones, token_type_ids: zeros });
})();
JS
(cd "$root" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1)
pids=()
for _ in 1 2; do
  node "$load_js" "$root/node_modules/onnxruntime-node" "$root/test/fixtures/models/bert-sst2/model-opset17.onnx" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
sleep 5
status=0
for i in $(seq 1 "$runs"); do
  rm -rf "$work/repo/node_modules" "$work/repo/dist" "$work/repo/out" "$work/repo/test-output"
  start=$(date +%s)
  (cd "$work/repo" && CI=true bash .ci/run > "$work/run-$i.log" 2>&1)
  rc=$?
  end=$(date +%s)
  cp -r "$work/repo/test-output" "$work/run-$i-output" 2>/dev/null
  echo "run $i under load: exit $rc in $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s: $(tail -n 1 "$work/run-$i.log")  (log: $work/run-$i.log, screenshots and logs: $work/run-$i-output)"
  [[ $rc == 0 ]] || status=1
  uptime
done
exit $status
