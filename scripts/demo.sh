#!/usr/bin/env bash
# Newcomer's main job: install, build, and run OPTIN on the bundled sample model (a BERT trained on
# SST-2): inspect it, score every head and FFN neuron on 16 training sentences, plan a 40% MAC cut.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund --loglevel=error
node scripts/build.mjs
model=test/fixtures/models/bert-sst2/model-opset17.onnx
mkdir -p demo-output
node dist/cli.js inspect "$model" --seq-len 12
node dist/cli.js score "$model" --data test/fixtures/data/sst2/train.tsv --samples 16 --out demo-output/bert-sst2.scores.json
node dist/cli.js plan demo-output/bert-sst2.scores.json --budget 0.6 --out demo-output/bert-sst2.plan.json
