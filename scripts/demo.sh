#!/usr/bin/env bash
# Newcomer's main job: install, build, and prune the bundled sample model (a BERT trained on SST-2)
# with OPTIN: score every head and FFN neuron on 32 training sentences, keep 60% of the MACs, write
# the physically smaller model (verified against the masked original), measure its accuracy on the
# 872-sentence test split and its speed against the original, and print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund --loglevel=error
node scripts/build.mjs
mkdir -p demo-output
node dist/cli.js prune test/fixtures/models/bert-sst2/model-opset17.onnx --budget 0.6 \
  --data test/fixtures/data/sst2/train.tsv --eval test/fixtures/data/sst2/test.tsv \
  --out demo-output/bert-sst2.optin-60.onnx
