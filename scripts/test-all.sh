#!/usr/bin/env bash
# The one test command: installs everything, builds, runs every suite and prints "N passed, N failed".
# Suites: typecheck, import cycles, unit tests (mocha + onnxruntime, WebGPU on SwiftShader), extension tests in a real VS Code (code-server +
# Playwright + Debian chromium), every platform VSIX unpacked and checked, the linux-x64 one installed and UI-tested.
set -uo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
mkdir -p test-output
passed=0
failed=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); echo "== $3: $1 passed, $2 failed"; }
die() { echo "setup failed: $*" >&2; echo "$passed passed, $((failed + 1)) failed"; exit 1; }

# Run a setup step quietly: its output goes to test-output/<name>.log and is shown only on failure.
quiet() {
  local name="$1"; shift
  if "$@" > "test-output/$name.log" 2>&1; then return 0; fi
  echo "---- $name failed; its output:"; tail -n 80 "test-output/$name.log"; return 1
}

echo "== install (npm ci; log in test-output/npm-ci.log)"
quiet npm-ci npm ci --no-audit --no-fund --loglevel=error || die "npm ci"
echo "== build"
quiet build node scripts/build.mjs --tests || die "build"

echo "== typecheck"
if npx tsc -p . --noEmit; then add 1 0 typecheck; else add 0 1 typecheck; fi

echo "== import cycles (dpdm, type-only imports included)"
if npm run --silent check:cycles; then add 1 0 import-cycles; else add 0 1 import-cycles; fi

# Run a mocha suite, tee its output to test-output/<name>.log and add its counts.
mocha_suite() {
  local name="$1"; shift
  npx mocha "$@" 2>&1 | tee "test-output/$name.log"
  local p f
  p=$(grep -Eo '^\s+[0-9]+ passing' "test-output/$name.log" | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '^\s+[0-9]+ failing' "test-output/$name.log" | grep -Eo '[0-9]+' || echo 0)
  [[ "$p" == 0 && "$f" == 0 ]] && f=1
  add "$p" "$f" "$name"
}

if [[ "${OPTIN_SKIP_E2E:-}" != 1 ]]; then
  echo "== install test tools: chromium, SwiftShader Vulkan, code-server (log in test-output/e2e-install.log)"
  tools="$(bash test/e2e/install.sh 2> test-output/e2e-install.log | tail -n 1)" || { tail -n 80 test-output/e2e-install.log; die "test tools install"; }
  echo "tools: $tools"
  export OPTIN_E2E_TOOLS="$tools" OPTIN_TEST_OUTPUT="$PWD/test-output"
fi

echo "== unit tests"
mocha_suite unit --config test/.mocharc.json

if [[ "${OPTIN_SKIP_E2E:-}" == 1 ]]; then
  echo "== real-VS-Code tests skipped (OPTIN_SKIP_E2E=1)"
else
  echo "== real VS Code: extension suite + workbench UI"
  node out/test/e2e/run.js 2>&1 | tee test-output/e2e.log
  line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed' test-output/e2e.log | tail -n 1)
  if [[ -n "$line" ]]; then add "$(echo "$line" | awk '{print $2}')" "$(echo "$line" | awk '{print $4}')" "e2e"; else add 0 1 e2e; fi

  echo "== package every platform's VSIX (log in test-output/package.log), check their contents, smoke-test the installed linux-x64 one"
  if quiet package node scripts/package.mjs; then
    grep -E '^[a-z0-9-]+: dist/vsix/' test-output/package.log
    mocha_suite vsix-contents --timeout 300000 'out/test/package/**/*.test.js'
    node out/test/e2e/run.js --vsix dist/vsix/optin-vscode-linux-x64-*.vsix 2>&1 | tee test-output/vsix.log
    line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed' test-output/vsix.log | tail -n 1)
    if [[ -n "$line" ]]; then add "$(echo "$line" | awk '{print $2}')" "$(echo "$line" | awk '{print $4}')" "vsix"; else add 0 1 vsix; fi
  else
    add 0 1 package
  fi
fi

echo "$passed passed, $failed failed"
[[ "$failed" == 0 ]]
