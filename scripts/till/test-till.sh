#!/usr/bin/env bash
# test-till.sh — the till test bed (make test-till). For each Debian release in
# $TILL_RELEASES (default "bookworm trixie"): a debootstrapped image (cached in .cache/till),
# the .deb installed in it by apt, booted under QEMU (KVM when /dev/kvm is usable, else TCG)
# with a USB printer gadget and a fake secupay inside, the scenarios of
# scripts/till/guest/scenarios.sh run, a power cut (QEMU killed mid-job), a second boot on the
# same disk. Prints one PASS/FAIL line per scenario and ends with "N passed, M failed".
#
# TILL_ARCH=arm64 (make test-till-arm64): the arm64 package on an emulated ARM till, Debian's
# arm64 image and kernel under qemu-system-aarch64 (TCG), images cached as RELEASE-arm64. The
# same guest scripts run a shorter list, the phase "short" of scenarios.sh (the whole list
# under TCG's ARM emulation would take most of an hour); TILL_PHASES="main after-cut" runs
# the whole list there too.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
. scripts/till/lib.sh
till_arch=${TILL_ARCH:-amd64}
if [ "$till_arch" = amd64 ]; then
	releases=${TILL_RELEASES:-bookworm trixie}
	phases=${TILL_PHASES:-main after-cut}
else
	releases=${TILL_RELEASES:-bookworm}
	phases=${TILL_PHASES:-short}
fi
boot_timeout=${TILL_BOOT_TIMEOUT:-1200}
cache=$top/.cache/till
export PATH="$PATH:/usr/local/go/bin"

till_host_deps "$till_arch" || exit 1
. scripts/till/vm.sh
till_build_guest_parts || exit 1
# The upgrade scenario installs the same tree as a later version.
next=$(DEB_HOST_ARCH=$till_arch scripts/build-deb.sh "$(scripts/version)+next" "$cache/dist-next") || exit 1

echo "till: lintian $deb"
lintian -I --pedantic "$deb" 2>&1 | grep -v '^running with root' | sed 's/^/  /'

passed=0
failed=0
summary=""

for rel in $releases; do
	t_rel=$(date +%s)
	img=$rel
	[ "$till_arch" = amd64 ] || img=$rel-$till_arch
	if ! scripts/till/build-image.sh "$rel" "$cache/$img" "$till_arch"; then
		echo "FAIL [$img] image"
		failed=$((failed + 1))
		continue
	fi
	t_image=$(($(date +%s) - t_rel))
	rel=$img
	till_accel "$rel"
	dir=$cache/run/$rel
	till_prepare "$rel" "$dir"
	cp "$next" "$dir/share/dist/"
	echo "${TILL_MEMORY_CAPTURES:-1000}" >"$dir/share/memory-captures"
	echo scenarios >"$dir/share/suite"

	# Each phase is one boot of the same disk, the next only when the one before finished.
	prev=
	for phase in $phases; do
		[ -z "$prev" ] || [ -e "$dir/share/results/$prev.done" ] || break
		boot_again_after_panic "$rel" "$dir" "$phase"
		prev=$phase
	done

	res=$dir/share/results/results.txt
	touch "$res"
	for must in $phases; do
		[ -e "$dir/share/results/$must.done" ] || echo "FAIL boot-$must 0 did not finish (see $dir/console-$must.log)" >>"$res"
	done
	till_report "$rel" "$res"
	summary="$summary $rel:$(($(date +%s) - t_rel))s (image ${t_image}s)"
	echo "till: [$rel] logs in $dir/share/results"
done
echo "till: wall time per release:$summary; guest kernel panics before the suite: $panics"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
