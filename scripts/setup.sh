#!/usr/bin/env bash
# Set up ringside on a fresh machine and run the demo: installs the Debian
# packages it needs, builds ringside and the guest images, and boots `hello`
# on ringside's own CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
echo "ringside: building (release)…" >&2
cargo build --release
echo >&2
echo "ringside: booting images/build/hello.elf on the software CPU:" >&2
set +e
target/release/ringside run --kernel images/build/hello.elf --append "demo" --no-stdin
status=$?
set -e
if [ "$status" -ne 1 ]; then
    echo "ringside: demo failed with status $status" >&2
    exit 1
fi
echo >&2
echo "ringside: ready. Try: target/release/ringside run --kernel images/build/rings.elf --trace int" >&2
