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
# The virtualization lab: one workload under every mode, side by side.
modes=none,full,trap-only,para,hw
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    modes="$modes,kvm"
fi
echo "ringside: the page-table workload under every virtualization mode:" >&2
target/release/ringside compare --kernel images/build/ptupdate.elf --modes "$modes" || {
    echo "ringside: compare failed" >&2
    exit 1
}
echo >&2
echo "ringside: ready. Try: target/release/ringside run --kernel images/build/rings.elf --trace int" >&2
echo "          or:  target/release/ringside tui --kernel images/build/hole.elf --virt trap-only" >&2
