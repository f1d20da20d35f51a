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
. scripts/till/vm.sh
till_build_guest_parts || exit 1
# The upgrade scenario installs the same tree as a later version.
next=$(scripts/build-deb.sh "$(scripts/version)+next" "$cache/dist-next") || exit 1

echo "till: lintian $deb"
lintian -I --pedantic "$deb" 2>&1 | grep -v '^running with root' | sed 's/^/  /'

passed=0
failed=0
summary=""

for rel in $releases; do
	t_rel=$(date +%s)
	if ! scripts/till/build-image.sh "$rel" "$cache/$rel"; then
		echo "FAIL [$rel] image"
		failed=$((failed + 1))
		continue
	fi
	till_accel "$rel"
	dir=$cache/run/$rel
	till_prepare "$rel" "$dir"
	cp "$next" "$dir/share/dist/"
	echo "${TILL_MEMORY_CAPTURES:-1000}" >"$dir/share/memory-captures"
	echo scenarios >"$dir/share/suite"

	boot_again_after_panic "$rel" "$dir" main
	[ -e "$dir/share/results/main.done" ] && boot_again_after_panic "$rel" "$dir" after-cut

	res=$dir/share/results/results.txt
	touch "$res"
	for must in main after-cut; do
		[ -e "$dir/share/results/$must.done" ] || echo "FAIL boot-$must 0 did not finish (see $dir/console-$must.log)" >>"$res"
	done
	till_report "$rel" "$res"
	summary="$summary $rel:$(($(date +%s) - t_rel))s"
	echo "till: [$rel] logs in $dir/share/results"
done
echo "till: wall time per release:$summary; guest kernel panics before the suite: $panics"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
