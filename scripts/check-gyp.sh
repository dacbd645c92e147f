#!/usr/bin/env bash
# Proves binding.gyp builds the same addon as CMakeLists.txt: builds it with node-gyp in a
# scratch copy (node-gyp's `rebuild` would wipe cmake-js's build/), then runs the addon test
# suite against that build. Offline: npm points node-gyp at the installed Node headers.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r native binding.gyp package.json "$scratch/"
ln -s "$PWD/node_modules" "$scratch/node_modules"
(cd "$scratch" && npm run -s build:native:gyp >/dev/null 2>"$scratch/gyp.log") || { cat "$scratch/gyp.log"; exit 1; }
echo "check-gyp: node-gyp build ok; running the addon tests against it"
THUNDERPAC_NATIVE_ADDON="$scratch/build/Release/thunderpac_native.node" \
  npx vitest run test/bpf-object-loads-and-test-runs.test.ts test/bpf-verifier-rejection-carries-full-log.test.ts
