#!/usr/bin/env bash
# power-cuts.sh — the power-cut suite of the till test bed (make test-power-cuts). For each
# Debian release in $TILL_RELEASES (default "trixie"): the .deb installed in a copy of the
# cached image (scripts/till/build-image.sh), then the power of the VM cut at each of ecrd's
# write points in turn, on the same disk: QEMU is killed while the crash-point build of
# ecrd holds at the point (ECRD_CRASHPOINT_HOLD=1), with the kernel set to write nothing
# back on its own, and the disk booted again. Each boot checks the cut before it (nothing
# captured twice, the receipt on paper once or twice, the drawer opened at most once, the
# daemon healthy, the unflushed canaries gone) and arms the next point: N points, N+1 boots.
# The paper and the fake secupay's call log are kept on the share (DIR/share/bed), outside
# the till, so that only ecrd flushes the till's disk. See scripts/till/guest/power-cuts.sh. Prints one PASS/FAIL line per point and ends with
# "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
. scripts/till/lib.sh
releases=${TILL_RELEASES:-trixie}
boot_timeout=${TILL_BOOT_TIMEOUT:-900}
cache=$top/.cache/till
export PATH="$PATH:/usr/local/go/bin"

# The write points, in the order a capture passes them: internal/crashpoint.Hit's names
# (grep 'crashpoint.Hit' for the list). store-commit (before SQLite's COMMIT) and
# store-committed (after it returned) are passed at every transaction of the state database,
# numbered per process: #1 is the capture's intent (flushed), #2 secupay's answer with the
# receipt job (flushed), #3 the job marked printed (not flushed: the drawer pulse needs no
# flush). SQLite checkpoints its log inside a commit, so it has no point of its own. A point
# added to the code must be added here: the run fails while one is missing.
all_points="store-commit#1 store-committed#1 before-start after-answer store-commit#2 store-committed#2 after-journal after-spool before-print mid-print after-print store-commit#3 store-committed#3 before-kick"
POWER_CUT_POINTS=${POWER_CUT_POINTS:-$all_points}

till_host_deps || exit 1
. scripts/till/vm.sh
t_all=$(date +%s)
till_build_guest_parts || exit 1
# The daemon that stops at a point: the same tree built with -tags crashpoints, as the
# package builds it otherwise.
scripts/build-ecrd "$cache/bin/ecrd-crashpoints" "$(scripts/version)+crashpoints" crashpoints || exit 1

# boot_k_again DIR PHASE: whether boot K, whose guest panicked while the suite ran, may run
# again: a checking boot (K ≥ 1) that had not begun to arm the next point. Checking asks ecrd
# and the fake again and changes nothing; arming does. What the broken run wrote to
# results.txt goes (results_size: its size before the boot).
boot_k_again() {
	local res=$1/share/results k=${2#boot-}
	[ "$k" -ge 1 ] && [ ! -e "$res/point-$((k + 1)).env" ] && [ ! -e "$res/finished" ] || return 1
	truncate -s "$results_size" "$res/results.txt"
}

passed=0
failed=0
summary=""
for name in $(grep -rhoE --include='*.go' --exclude='*_test.go' 'crashpoint\.Hit\("[^"]+"\)' . | sed -E 's/.*"(.*)".*/\1/' | sort -u); do
	case " $all_points " in
	*" $name "* | *" $name#"*) ;;
	*)
		echo "FAIL [all] point-list             0s  $name (crashpoint.Hit in the code) is not in power-cuts.sh's list"
		failed=$((failed + 1))
		;;
	esac
done
for rel in $releases; do
	t_rel=$(date +%s)
	if ! scripts/till/build-image.sh "$rel" "$cache/$rel"; then
		echo "FAIL [$rel] image"
		failed=$((failed + 1))
		continue
	fi
	till_accel "$rel"
	dir=$cache/run/power-cuts-$rel
	till_prepare "$rel" "$dir"
	cp "$cache/bin/ecrd-crashpoints" "$dir/share/bin/"
	echo power-cuts >"$dir/share/suite"
	# shellcheck disable=SC2086
	printf '%s\n' $POWER_CUT_POINTS >"$dir/share/points"
	n=$(grep -c . "$dir/share/points")
	res=$dir/share/results/results.txt
	# The test bed's own test: TILL_PANIC_ONCE_AT=boot-K makes the guest's kernel panic once in
	# boot K, after its check and before it arms the next point (guest/power-cuts.sh).
	[ -n "${TILL_PANIC_ONCE_AT:-}" ] && echo "$TILL_PANIC_ONCE_AT" >"$dir/share/panic-once"
	k=0
	while [ "$k" -le "$n" ]; do
		results_size=$(stat -c %s "$res" 2>/dev/null || echo 0)
		boot_again_after_panic "$rel" "$dir" "boot-$k" boot_k_again || {
			echo "FAIL boot-$k 0 timed out (see $dir/console-boot-$k.log)" >>"$res"
			break
		}
		if [ "$k" -lt "$n" ] && [ -z "$cut_after" ]; then
			echo "FAIL boot-$k 0 the boot ended without arming point $((k + 1)) (see $dir/console-boot-$k.log and results/runner-boot-$k.log)" >>"$res"
			break
		fi
		k=$((k + 1))
	done
	[ "$k" -gt "$n" ] && [ ! -e "$dir/share/results/finished" ] &&
		echo "FAIL boot-$n 0 did not finish (see $dir/console-boot-$n.log)" >>"$res"
	touch "$res"
	till_report "$rel" "$res"
	summary="$summary $rel:$(($(date +%s) - t_rel))s for $((k > n ? n + 1 : k + 1)) boots"
	echo "till: [$rel] logs in $dir/share/results"
done
echo "till: power cuts, wall time:$summary; all $(($(date +%s) - t_all))s; guest kernel panics (each booted again): $panics"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
