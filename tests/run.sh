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
# One build serves every test: the window (the default `gui` feature) and Burn's wgpu backend
# (`--device wgpu`) are compiled in, so Bevy and Burn are each built once, with one feature set.
# The window test runs the real window under Xvfb and the wgpu test trains on any Vulkan driver
# (Mesa's software lavapipe in CI); each is skipped with a message where `xvfb-run` or a Vulkan
# driver is missing (`apt-get install xvfb mesa-vulkan-drivers`; .ci/run installs them).
cargo test --workspace --features wgpu "$@"
# The test that starts a real MLflow server (ignored by plain `cargo test`).
cargo test --features wgpu --test tracking -- --ignored
