#!/usr/bin/env bash
# test-till.sh — the till test bed (make test-till). For each Debian release in
# $TILL_RELEASES (default "bookworm trixie"): a debootstrapped image (cached in .cache/till),
# the .deb installed in it by apt, booted under QEMU (KVM when /dev/kvm is usable, else TCG)
# with a USB printer gadget and a fake secupay inside, the scenarios of
# scripts/till/guest/scenarios.sh run, a power cut (QEMU killed mid-job), a second boot on the
# same disk. Prints one PASS/FAIL line per scenario and ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
. scripts/till/lib.sh
releases=${TILL_RELEASES:-bookworm trixie}
boot_timeout=${TILL_BOOT_TIMEOUT:-1200}
cache=$top/.cache/till
export PATH="$PATH:/usr/local/go/bin"

till_host_deps || exit 1
version=$(scripts/version)
echo "till: building ecrd $version"
deb=$(scripts/build-deb.sh "$version" dist) || exit 1
# The upgrade scenario installs the same tree as a later version.
next=$(scripts/build-deb.sh "${version}+next" "$cache/dist-next") || exit 1
mkdir -p "$cache/bin"
CGO_ENABLED=0 go build -trimpath -o "$cache/bin/printersim" ./scripts/till/printersim || exit 1
CGO_ENABLED=0 go build -trimpath -o "$cache/bin/fakesecupay" ./scripts/till/fakesecupay || exit 1

echo "till: lintian $deb"
lintian -I --pedantic "$deb" 2>&1 | grep -v '^running with root' | sed 's/^/  /'

# kvm_works KERNEL: /dev/kvm can be opened yet still not run a guest (nested virtualisation
# that hangs without a word): boot the kernel with KVM for a few seconds and look for its
# first console line before trusting it.
kvm_works() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	local out
	out=$(timeout 20 qemu-system-x86_64 -accel kvm -m 256 -display none -monitor none -serial stdio \
		-kernel "$1" -append "console=ttyS0 panic=-1" -no-reboot -nic none 2>/dev/null | head -c 4096)
	case "$out" in *"Linux version"*) return 0 ;; esac
	return 1
}

passed=0
failed=0
summary=""

# boot REL DIR PHASE: boot the disk once, running PHASE; returns when the guest powers off,
# or kills QEMU when the guest asks for a power cut, or at the timeout (status 1).
boot() {
	local rel=$1 dir=$2 phase=$3 qpid t0 rc=0
	echo "$phase" >"$dir/share/phase"
	rm -f "$dir/share/killme"
	t0=$(date +%s)
	# shellcheck disable=SC2086
	qemu-system-x86_64 $accel -machine q35 -m 2048 -smp 2 -no-reboot \
		-display none -monitor none -serial "file:$dir/console-$phase.log" \
		-kernel "$cache/$rel/vmlinuz" -initrd "$cache/$rel/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=auto" \
		-drive "file=$dir/disk.img,format=raw,if=virtio" \
		-virtfs "local,path=$dir/share,mount_tag=host,security_model=none,id=host" \
		-nic none >"$dir/qemu-$phase.log" 2>&1 &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		if [ -e "$dir/share/killme" ]; then
			kill -KILL "$qpid"
			echo "till: [$rel] power cut (QEMU killed) after $(($(date +%s) - t0))s"
			break
		fi
		if [ $(($(date +%s) - t0)) -gt "$boot_timeout" ]; then
			kill -KILL "$qpid"
			echo "till: [$rel] $phase timed out after ${boot_timeout}s; console: $dir/console-$phase.log"
			rc=1
			break
		fi
		sleep 1
	done
	wait "$qpid" 2>/dev/null
	echo "till: [$rel] boot $phase: $(($(date +%s) - t0))s"
	return $rc
}

for rel in $releases; do
	t_rel=$(date +%s)
	if ! scripts/till/build-image.sh "$rel" "$cache/$rel"; then
		echo "FAIL [$rel] image"
		failed=$((failed + 1))
		continue
	fi
	if [ -z "${accel:-}" ]; then
		accel=${TILL_ACCEL:-}
		if [ -z "$accel" ]; then
			if kvm_works "$cache/$rel/vmlinuz"; then accel="-accel kvm -cpu host"; else accel="-accel tcg"; fi
		fi
		echo "till: qemu $accel"
	fi
	dir=$cache/run/$rel
	rm -rf "$dir"
	mkdir -p "$dir/share/dist" "$dir/share/bin" "$dir/share/results"
	cp -r scripts/till/guest "$dir/share/guest"
	cp "$deb" "$next" "$dir/share/dist/"
	cp "$cache/bin/printersim" "$cache/bin/fakesecupay" "$dir/share/bin/"
	cp --sparse=always "$cache/$rel/root.img" "$dir/disk.img"

	boot "$rel" "$dir" main
	[ -e "$dir/share/results/main.done" ] && boot "$rel" "$dir" after-cut

	res=$dir/share/results/results.txt
	touch "$res"
	for must in main after-cut; do
		[ -e "$dir/share/results/$must.done" ] || echo "FAIL boot-$must 0 did not finish (see $dir/console-$must.log)" >>"$res"
	done
	while read -r verdict name secs detail; do
		printf '%s [%s] %-24s %6ss  %s\n' "$verdict" "$rel" "$name" "$secs" "$detail"
		if [ "$verdict" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	done <"$res"
	summary="$summary $rel:$(($(date +%s) - t_rel))s"
	echo "till: [$rel] logs in $dir/share/results"
done
echo "till: wall time per release:$summary"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
