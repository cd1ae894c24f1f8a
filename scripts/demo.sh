#!/usr/bin/env bash
# Newcomer's main job: install, build, and run OPTIN on the bundled sample model (BERT trained on SST-2).
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund --loglevel=error
node scripts/build.mjs
node dist/cli.js inspect test/fixtures/models/bert-sst2/model-opset17.onnx --seq-len 12
