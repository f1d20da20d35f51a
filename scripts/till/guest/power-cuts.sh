#!/usr/bin/env bash
# power-cuts.sh PHASE — the power-cut suite (make test-power-cuts), run inside the guest as
# root: the power of the till is cut at each write point of ecrd in turn, on one disk.
#
# The host lists the points, one per line, in the share's points file. Boot 0 installs and
# configures the package, then arms point 1; boot K checks what the cut at point K left, then
# arms point K+1 (N points, N+1 boots). Arming: everything written so far is flushed (sync),
# the kernel is told to write nothing back on its own, and ecrd is restarted as the
# crash-point build (ecrd-crashpoints, with ECRD_CRASHPOINT_HOLD=1), which stops at the point
# and says so in the journal. The POS's capture is on its way; at the line, two canaries are
# written without a flush and the host kills QEMU: what ecrd had not flushed is gone, which
# the canaries, missing on the next boot, prove. The drop-in that arms ecrd is in /run, so
# the next boot runs the packaged daemon.
#
# Nothing but ecrd flushes the till's disk: a flush by anyone commits the file system's
# journal, and with it data ecrd appended to a file and did not flush (ext4, data=ordered),
# which would hide a missing flush of ecrd's. So the paper and the fake secupay's call log
# live on the host's share (a printer and secupay are outside the till, and keep what they
# took when the till loses power), and the journal of the guest is volatile.
set -u
. "$(dirname "$0")/lib.sh"

POINTS=$S/points
BED=$S/bed
PAPER=$BED/paper.bin
# Two canaries: a new file, and an append to a flushed file, as ecrd appends to its log.
CANARY=/var/lib/till-canary
CANARY_LOG=/var/lib/till-canary.log
DROPIN=/run/systemd/system/ecrd.service.d/power-cut.conf

point_of() { sed -n "${1}p" "$POINTS"; }
npoints() { grep -c . "$POINTS"; }
# read_backs POINT: how many read-backs (GET) the capture cut at POINT may take: "0" where the
# commit holding secupay's answer was flushed before the cut (the database must bring it back:
# reading it back from secupay would mean a flushed commit was lost, which the in-doubt rule
# hides from the money but not from this test), "1+" where only the intent was flushed (in
# doubt: never decided blind), "any" where the intent was not committed (nothing was sent, and
# the POS's repeat is a new capture).
read_backs() {
	case "$1" in
	store-commit#1) echo any ;;
	store-committed#1 | before-start | after-answer | store-commit#2) echo 1+ ;;
	*) echo 0 ;;
	esac
}
# paper_of POINT: "WHOLE_MIN WHOLE_MAX TORN PULSES_MAX" the paper must show for the capture cut
# at POINT, once the next boot printed it (docs/durability.md, "Power cuts, flush by flush"):
# - before the answer's flush, the job is made by the next life, which owns its pulse: one
#   whole copy, the drawer opened (at most) once;
# - from the answer's flush on, the job names the life the cut ended: the next life prints it
#   without a pulse; after-spool races the worker of the dying life, which may have printed
#   and pulsed before the cut;
# - mid-print leaves a torn copy, then a whole one;
# - after the printer took the job, its printed mark (not flushed) is lost: it prints again,
#   the documented duplicate (before-kick: the mark may or may not have reached the disk).
paper_of() {
	case "$1" in
	store-commit#1 | store-committed#1 | before-start | after-answer | store-commit#2) echo 1 1 0 1 ;;
	store-committed#2 | after-journal | before-print) echo 1 1 0 0 ;;
	after-spool) echo 1 2 0 1 ;;
	mid-print) echo 1 1 1 0 ;;
	after-print | store-commit#3 | store-committed#3) echo 2 2 0 0 ;;
	before-kick) echo 1 2 0 0 ;;
	*) echo 1 2 any 1 ;;
	esac
}
# id_of POINT: the transaction captured at POINT, named after it so the paper shows whose
# receipt is whose (store-commit#2 → STX_PCSTORECOMMITN2).
id_of() { echo "STX_PC$(echo "$1" | tr -d '#-' | tr a-z A-Z | sed 's/\([A-Z]\)\([0-9]\)$/\1N\2/')"; }

# tally ID: "WHOLE TORN PULSES" of ID's receipts on the whole paper. A job starts with
# ESC @; it is whole when its cut (GS V B) is on the paper. A drawer pulse (ESC p, sent after
# the job) counts for the job before it. A torn job that stops before its id counts for the
# next job with an id: the spool prints the torn job again first.
tally() {
	LC_ALL=C grep -a -o -P '\x1b@|STX_[A-Z0-9]+|\x1dVB|\x1bp' "$PAPER" | LC_ALL=C awk -v id="$1" '
		function finish() {
			if (!started) return
			if (rid == "") { anon++; return }
			if (rid == id) { w += cut; t += !cut + anon; p += pulses }
			anon = 0
		}
		$0 == "\033@" { finish(); started = 1; rid = ""; cut = 0; pulses = 0; next }
		$0 == "\033p" { pulses++; next }
		$0 == "\035VB" { cut = 1; next }
		{ rid = $0 }
		END { finish(); printf "%d %d %d\n", w + 0, t + 0, p + 0 }'
}

# settled ID: the POS asks for the capture until the answer is ok (an in-doubt capture
# answers 504 until the read-back after ECRD_IN_DOUBT_WAIT settles it). The last answer is
# left in answer, the number of in-doubt answers in in_doubt_answers.
settled() {
	local end=$(($(date +%s) + 120))
	in_doubt_answers=0
	while :; do
		answer=$(capture "$1" 2>&1) || true
		case "$answer" in
		*'"status":"ok"'*) return 0 ;;
		*in_doubt*) in_doubt_answers=$((in_doubt_answers + 1)) ;;
		*secupay_refused*) return 1 ;; # final: asking again changes nothing
		esac
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 1
	done
}

# get_count ID: read-backs (GET) of ID that the fake secupay logged.
get_count() { local n; n=$(curl -s "$FAKE/_fake/counts" | sed 's/.*"get":{\([^}]*\)}.*/\1/' | tr ',' '\n' | grep -m1 "\"$1\":" | cut -d: -f2); echo "${n:-0}"; }
job_printed() { pos_curl "http://ecrd/v1/jobs/$1.receipt" | grep -q '"state":"printed"'; }
one_pulse() { [ "$(tally "$1" | cut -d' ' -f3)" -ge 1 ]; }

# --- boot 0 --------------------------------------------------------------------------------
s_power_cut_setup() {
	install -m 0755 "$S/bin/ecrd-crashpoints" /usr/local/sbin/ecrd-crashpoints
	/usr/local/sbin/ecrd-crashpoints version
	# The test bed's own flushes go to the host (see the top). The share is mounted by
	# till-runner.service before its main process starts.
	local wait_share="ExecStartPre=/bin/sh -c 'until mountpoint -q $S; do sleep 0.2; done'"
	mkdir -p /etc/systemd/system/printersim.service.d /etc/systemd/system/fakesecupay.service.d /etc/systemd/journald.conf.d
	printf '[Unit]\nAfter=till-runner.service\n[Service]\n%s\nExecStart=\nExecStart=/usr/local/sbin/printersim -paper %s\n' \
		"$wait_share" "$PAPER" >/etc/systemd/system/printersim.service.d/power-cuts.conf
	printf '[Unit]\nAfter=till-runner.service\n[Service]\n%s\nExecStart=\nExecStart=/usr/local/sbin/fakesecupay -log %s -token-out /run/fakesecupay.token -client-out /run/fakesecupay.client\n' \
		"$wait_share" "$BED/requests.log" >/etc/systemd/system/fakesecupay.service.d/power-cuts.conf
	printf '[Journal]\nStorage=volatile\n' >/etc/systemd/journald.conf.d/power-cuts.conf
	systemctl daemon-reload
	systemctl restart systemd-journald.service printersim.service fakesecupay.service
	wait_for 20 curl -sf -o /dev/null "$FAKE/_fake/counts" || fail "fake secupay did not start on the share"
	cmp -s /run/fakesecupay.token /etc/ecrd/token || fail "the fake's token changed"
	# An empty log ready for the append canary, flushed with everything else at each arming.
	: >"$CANARY_LOG"
	# The drawer on pin 2, so that the kick is a real step (before-kick); a short in-doubt
	# wait, so that a capture whose answer the cut took settles within the test.
	set_env ECRD_DRAWER_KICK 0
	set_env ECRD_IN_DOUBT_WAIT 5s
	restart_ecrd
	# A capture with no cut: one start/cash, one whole copy, one pulse. This is also what
	# shows that the paper counts the drawer's pulses.
	local out id=STX_PCNOCUT
	out=$(capture "$id")
	echo "$out"
	echo "$out" | grep -q '"state":"printed"' || fail "capture without a cut: $out"
	wait_for 10 one_pulse "$id" || true
	local t
	t=$(tally "$id")
	note "whole/torn/pulses $t"
	[ "$t" = "1 0 1" ] || fail "a capture without a cut left whole/torn/pulses $t, want 1 0 1"
	[ "$(start_count "$id")" = 1 ] || fail "start/cash called $(start_count "$id") times"
}

# --- arming point K ------------------------------------------------------------------------
# arm K: stop ecrd at point K and have the host cut the power; never returns. When the
# point is never reached, point K fails here and the cut comes anyway (the next boot checks
# only the canary for K, and goes on with K+1).
arm() {
	local k=$1 point id t0
	point=$(point_of "$k")
	id=$(id_of "$point")
	local canary="canary $k $point $(date +%s%N)"
	printf 'point=%q\nid=%q\ncanary=%q\n' "$point" "$id" "$canary" >"$R/point-$k.env"
	echo "arming $k: $point ($id)"
	# Everything up to here is on disk; from here on the kernel writes nothing back on its
	# own (no periodic journal commit, no expiry of dirty pages), so only what a process
	# flushes survives the cut.
	sync
	mount -o remount,commit=600 /
	sysctl -q -w vm.dirty_expire_centisecs=360000 vm.dirty_writeback_centisecs=0
	grep ' / ' /proc/mounts
	mkdir -p "$(dirname "$DROPIN")"
	cat >"$DROPIN" <<CONF
[Service]
ExecStart=
ExecStart=/usr/local/sbin/ecrd-crashpoints serve
Environment=ECRD_CRASHPOINT=$point ECRD_CRASHPOINT_HOLD=1 ECRD_IN_DOUBT_WAIT=5s
CONF
	systemctl daemon-reload
	t0=$(date +%s)
	if ! restart_ecrd; then
		echo "FAIL cut-$point 0 the crash-point build did not start" >>"$R/results.txt"
		touch "$R/point-$k.failed"
	else
		# The POS's capture; its answer never comes.
		capture "$id" >"$R/point-$k.pos" 2>&1 &
		if ! wait_for 120 sh -c "journalctl -u ecrd.service --since @$t0 -o cat --no-pager | grep -qF 'ecrd crashpoint $point reached'"; then
			echo "FAIL cut-$point 0 the point was never reached (see point-$k.armed-journal)" >>"$R/results.txt"
			touch "$R/point-$k.failed"
		fi
	fi
	# What the paper and secupay show at the cut, for the report.
	echo "at the cut: start/cash $(start_count "$id"), read-backs $(get_count "$id"), whole/torn/pulses $(tally "$id")" >"$R/point-$k.at-cut"
	journalctl -u ecrd.service --since "@$t0" -o short-monotonic --no-pager >"$R/point-$k.armed-journal" 2>&1
	# Not flushed: the next boot must not find them.
	echo "$canary" >"$CANARY"
	echo "$canary" >>"$CANARY_LOG"
	touch "$S/killme"
	sleep 600
}

# --- checking point K ----------------------------------------------------------------------
verify() {
	local k=$1 point id canary
	# shellcheck disable=SC1090
	. "$R/point-$k.env"
	cat "$R/point-$k.at-cut"
	# The cut proved nothing if an unflushed canary survived it.
	if grep -qF "$canary" "$CANARY" 2>/dev/null; then
		fail "the canary file written without a flush survived: the cut was not harsh"
	fi
	if grep -qF "$canary" "$CANARY_LOG" 2>/dev/null; then
		fail "the canary appended without a flush survived: something flushed the disk before the cut"
	fi
	wait_for 60 systemctl is-active -q ecrd.service || fail "ecrd not started at boot"
	settled "$id" || fail "the POS asking again never heard ok: $answer"
	echo "$answer"
	wait_for 60 job_printed "$id" || fail "the receipt job is not printed: $(pos_curl "http://ecrd/v1/jobs/$id.receipt")"
	# The pulse follows the recorded job; wait for it a little (none may come: a cut
	# before the pulse leaves the drawer shut, as documented).
	wait_for 5 one_pulse "$id" || true
	runuser -u pos -- ecrd status || fail "ecrd status is not ready"
	pos_curl http://ecrd/healthz | grep -q '"status":"ok"' || fail "healthz not ok"
	local starts whole torn pulses
	starts=$(start_count "$id")
	read -r whole torn pulses <<<"$(tally "$id")"
	# Read-backs show whether the intent survived the cut (the daemon reads back only a
	# capture it has an intent for).
	note "start/cash $starts, read-backs $(get_count "$id"), whole $whole, torn $torn, drawer $pulses, in-doubt answers $in_doubt_answers"
	[ "$starts" = 1 ] || fail "start/cash called $starts times"
	local gets
	gets=$(get_count "$id")
	case "$(read_backs "$point")" in
	0) [ "$gets" = 0 ] || fail "read back $gets times: the flushed answer was lost" ;;
	1+) [ "$gets" -ge 1 ] || fail "the capture in doubt was settled without reading it back" ;;
	esac
	[ "$whole" -ge 1 ] || fail "the receipt is not on the paper whole: lost"
	[ "$whole" -le 2 ] || fail "the receipt is on the paper $whole times"
	[ "$pulses" -le 1 ] || fail "the drawer opened $pulses times"
	# What this point leaves on the paper, given what was flushed before the cut.
	local wmin wmax want_torn pmax
	read -r wmin wmax want_torn pmax <<<"$(paper_of "$point")"
	[ "$whole" -ge "$wmin" ] && [ "$whole" -le "$wmax" ] || fail "$whole whole copies on the paper, want $wmin to $wmax at $point"
	[ "$want_torn" = any ] || [ "$torn" = "$want_torn" ] || fail "$torn torn copies on the paper, want $want_torn at $point"
	[ "$pulses" -le "$pmax" ] || fail "the drawer opened $pulses times, want at most $pmax at $point"
	every_capture_remembered "$k"
}

# every_capture_remembered K: every capture before the cut at point K (the one without a cut
# and each earlier point's) is still known: the POS asking again hears its stored answer, and
# secupay sees no new start/cash. A cut that took a commit flushed before it would show here
# as a second start/cash.
every_capture_remembered() {
	local k=$1 j ids=STX_PCNOCUT id2 out
	for j in $(seq 1 "$k"); do
		[ -e "$R/point-$j.failed" ] && continue
		id2=$(id_of "$(point_of "$j")")
		ids="$ids $id2"
	done
	for id2 in $ids; do
		out=$(capture "$id2" 2>&1) || true
		case "$out" in *'"status":"ok"'*) ;; *) fail "$id2, asked again after cut $k: $out" ;; esac
		[ "$(start_count "$id2")" = 1 ] || fail "$id2: start/cash called $(start_count "$id2") times after cut $k"
	done
	note "all $(echo "$ids" | wc -w) captures so far answered from the journal, none started again"
}

# --- the last boot: the whole run -----------------------------------------------------------
s_whole_run() {
	local n k point id whole torn pulses total
	n=$(npoints)
	curl -s "$FAKE/_fake/counts"
	echo
	# Nothing captured twice, and no receipt lost, printed three times or paid out twice,
	# counted again over the whole paper now that every boot is done.
	# start/cash only: a capture read back after a cut is asked for more than once, rightly.
	start_cash_counts | grep -v ':1$' && fail "a payment was captured more than once"
	for k in $(seq 1 "$n"); do
		[ -e "$R/point-$k.failed" ] && continue
		point=$(point_of "$k")
		id=$(id_of "$point")
		read -r whole torn pulses <<<"$(tally "$id")"
		echo "$point $id: whole $whole torn $torn drawer $pulses"
		[ "$whole" -ge 1 ] && [ "$whole" -le 2 ] && [ "$pulses" -le 1 ] || fail "$point: whole $whole, drawer $pulses over the run"
	done
	total=$(total_start_cash)
	local captures
	captures=$(($(ls "$R"/point-*.env | wc -l) + 1))
	note "start/cash total $total for $captures captures (one per point, the one without a cut)"
	[ "$total" = "$captures" ] || fail "$total start/cash calls for $captures captures"
	runuser -u pos -- ecrd status
}

phase=${1:?phase}
k=${phase#boot-}
n=$(npoints)
if [ "$k" = 0 ]; then
	: >"$R/results.txt"
	scenario bed-setup bed_setup || exit 1
	scenario install s_install || exit 1
	scenario configure-pos-user s_configure || exit 1
	scenario power-cut-setup s_power_cut_setup || exit 1
else
	if [ -e "$R/point-$k.failed" ]; then
		echo "point $k failed when armed; checking the canary only"
		. "$R/point-$k.env"
		cat "$CANARY" "$CANARY_LOG" 2>/dev/null | grep -qF "$canary" && echo "FAIL canary-$k 0 a canary survived the cut" >>"$R/results.txt"
	else
		. "$R/point-$k.env"
		scenario "cut-$point" verify "$k"
	fi
fi
# TILL_PANIC_ONCE_AT (the share's panic-once): the kernel made to panic once, here, so that
# the host's booting again after a panic in the suite is seen to work (scripts/till/vm.sh).
if [ "$(cat "$S/panic-once" 2>/dev/null)" = "$phase" ] && [ ! -e "$R/panicked-$phase" ]; then
	touch "$R/panicked-$phase"
	echo c >/proc/sysrq-trigger
fi
[ "$k" -lt "$n" ] && arm $((k + 1))
scenario whole-run s_whole_run
echo done >"$R/finished"
