#!/usr/bin/env bash
# Run a TypeScript file directly (dev helper): bundles with esbuild to a temp file and runs node.
set -euo pipefail
f="$1"; shift
mkdir -p out/tools; out="out/tools/$(basename "$f" .ts).cjs"
npx esbuild "$f" --bundle --platform=node --format=cjs --external:onnxruntime-node --external:sharp --outfile="$out" --log-level=warning
node "$out" "$@"
