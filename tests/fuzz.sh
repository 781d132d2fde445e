#!/usr/bin/env bash
# The long fuzz run (not part of CI): every parser target of src/fuzz.rs with CASES cases each
# (default 2,000,000), release build, two targets at a time. Prints each target's executions.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${1:-2000000}"
RACELOOP_FUZZ_CASES="$CASES" cargo test --release --no-default-features --bin raceloop fuzz:: \
    -- --nocapture --test-threads 2 2>&1 | grep -E "^fuzz |test result|panicked"
