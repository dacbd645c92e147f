#!/usr/bin/env bash
# Quick start, command 2: set up (idempotent), lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx biome ci .
npx tsc -p tsconfig.test.json
exec npx vitest run "$@"
