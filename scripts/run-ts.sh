#!/usr/bin/env bash
# Run a TypeScript file directly (dev helper): bundles with esbuild to a temp file and runs node.
set -euo pipefail
f="$1"; shift
out="$(mktemp -d)/run.cjs"
npx esbuild "$f" --bundle --platform=node --format=cjs --external:onnxruntime-node --outfile="$out" --log-level=warning
node "$out" "$@"
