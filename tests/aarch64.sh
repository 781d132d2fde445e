#!/usr/bin/env bash
# Runs raceloop-learn's unit tests built for aarch64 under qemu-user, so that an x86-64 machine
# tests the NEON kernel too: the matrix product against an f64 product and, through a hash of its
# outputs, bit for bit against the x86-64 FMA kernels; the packed forward pass against Burn's
# within 1e-5; the gradients against Burn's autodiff; the AdamW steps against Burn's bit for bit.
# It needs the aarch64 standard library (rustup) and Debian's gcc-aarch64-linux-gnu (the linker)
# and qemu-user. Not part of CI: it builds Burn a second time, for another target (about 15 min
# on 2 cores). Arguments go to `cargo test` (a test name filters).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add aarch64-unknown-linux-gnu
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    if ! command -v "$tool" > /dev/null; then
        echo "$tool is missing: apt-get install gcc-aarch64-linux-gnu qemu-user" >&2
        exit 1
    fi
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo test --release -p raceloop-learn --lib --target aarch64-unknown-linux-gnu "$@" -- --nocapture
