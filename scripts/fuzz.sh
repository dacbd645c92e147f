#!/usr/bin/env bash
# The long fuzz run: every test/fuzz-*.test.ts target with THUNDERPAC_FUZZ_RUNS times its CI case
# count (default 200x). The suite runs the same targets short. Reproduce a failure with the seed
# fast-check prints: THUNDERPAC_FUZZ_SEED=<seed> bash scripts/fuzz.sh [file filter]
#   bash scripts/fuzz.sh                    # all targets, 200x
#   THUNDERPAC_FUZZ_RUNS=1000 bash scripts/fuzz.sh fuzz-wasm
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export THUNDERPAC_FUZZ_RUNS="${THUNDERPAC_FUZZ_RUNS:-200}"
filter="${1:-test/fuzz-}"
exec npx vitest run --testTimeout=0 --hookTimeout=0 "$filter"
