#!/usr/bin/env bash
# Run every check: formatting, lints, unit tests, and the integration tests
# that boot every image on every backend (ringside tcg/kvm, QEMU tcg/kvm).
# KVM tests skip, saying why, where /dev/kvm is unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --release
echo "== lockstep finds an injected bug (test-only feature inject-flag-bug)" >&2
cargo test --release -p accel --features inject-flag-bug --test lockstep_injected
