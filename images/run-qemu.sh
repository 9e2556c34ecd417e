#!/usr/bin/env bash
# run-qemu.sh - run test kernels under QEMU, the reference machine.
#
#   ./run-qemu.sh [--accel tcg|kvm] [--append "ARGS"] [--check] NAME...
#
# Runs build/NAME.elf with
#   qemu-system-x86_64 -accel ACCEL -kernel build/NAME.elf -nodefaults \
#       -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4 -display none
# (timeout 20 s; TIMEOUT=seconds overrides it). A kernel passes when QEMU exits with
# status 1 (the guest wrote 0 to the debug-exit port). With --check, its serial
# output must also equal expected/NAME.txt byte for byte (kernels run without
# --append there, as the expected files were made that way).
set -u
cd "$(dirname "$0")"

accel=tcg
append=""
check=0
while [ $# -gt 0 ]; do
	case "$1" in
	--accel) accel="$2"; shift 2 ;;
	--append) append="$2"; shift 2 ;;
	--check) check=1; shift ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "run-qemu.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: run-qemu.sh [--accel tcg|kvm] [--append ARGS] [--check] NAME..." >&2; exit 2; }

failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for name in "$@"; do
	elf="build/$name.elf"
	if [ ! -f "$elf" ]; then
		echo "$name: $elf not found (run make)" >&2
		failed=1
		continue
	fi
	extra=()
	[ -n "$append" ] && extra=(-append "$append")
	timeout "${TIMEOUT:-20}" qemu-system-x86_64 -accel "$accel" -kernel "$elf" "${extra[@]}" -nodefaults \
		-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4 -display none >"$out" 2>/dev/null
	status=$?
	if [ "$check" = 1 ]; then
		if [ "$status" -eq 1 ] && cmp -s "$out" "expected/$name.txt"; then
			echo "$name: ok"
		else
			echo "$name: FAILED (exit status $status, expected 1; output vs expected/$name.txt:)"
			diff "expected/$name.txt" "$out" | sed 's/^/    /'
			failed=1
		fi
	else
		cat "$out"
		echo "[$name: qemu exit status $status]"
		[ "$status" -eq 1 ] || failed=1
	fi
done
exit $failed
