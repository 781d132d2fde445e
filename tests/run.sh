#!/usr/bin/env bash
# Runs every raceloop test: the Rust workspace (core crates and the app) and, for the interop
# tests, independent Python readers (mcap, mlflow, dvc) installed into .venv from tests/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! cmp -s tests/requirements.txt .venv/requirements.txt; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt .venv/requirements.txt
fi
export RACELOOP_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace --no-default-features "$@"
# The test that starts a real MLflow server (ignored by plain `cargo test`).
cargo test --no-default-features --test tracking -- --ignored
# `--device wgpu`: a short training on Burn's wgpu backend against the CPU's losses, on any
# Vulkan driver (Mesa's software lavapipe in CI, `mesa-vulkan-drivers`).
if [ -n "${RACELOOP_REQUIRE_WINDOW_TEST:-}" ] || ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    cargo test -p raceloop-learn --features wgpu --test wgpu -- --nocapture
else
    echo "skipped: the wgpu training test (no Vulkan driver; install mesa-vulkan-drivers)"
fi
# The window (the default `gui` feature): its logic tests, and the real window under Xvfb
# (skipped with a message where `xvfb-run` is not installed; .ci/run installs it).
cargo test --bin raceloop view::
cargo test --test window
