#!/usr/bin/env bash
# Install what ringside needs from Debian: QEMU (side-by-side runs and the
# reference for the integration tests), make/gcc/binutils (guest images),
# tmux (terminal UI tests). Idempotent; needs root (or sudo) only when
# something is missing.
set -euo pipefail

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v make >/dev/null 2>&1 || need+=(make)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v ld >/dev/null 2>&1 || need+=(binutils)
command -v tmux >/dev/null 2>&1 || need+=(tmux)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi

echo "ringside: installing Debian packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ringside: error: need root to install ${need[*]}; install them and rerun" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
