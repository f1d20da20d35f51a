#!/usr/bin/env bash
# scenarios.sh PHASE — the till acceptance scenarios, run inside the guest as root.
# The scenario runner and the helpers are in lib.sh, beside this file.
#
# Phase "main": install the .deb and drive the till (ends with a power cut: the host kills QEMU).
# Phase "after-cut": the same disk booted again: the cut job, upgrade, purge.
set -u
. "$(dirname "$0")/lib.sh"

# --- phase main ----------------------------------------------------------------------------
s_security() {
	systemd-analyze security ecrd.service | tee /tmp/sec.txt | tail -n 25
	local score
	score=$(grep -o 'Overall exposure level for ecrd.service: [0-9.]*' /tmp/sec.txt | awk '{print $NF}')
	note "score $score"
	awk "BEGIN{exit !($score <= 1.5)}" || fail "exposure $score > 1.5"
}

s_capture_lp() {
	local out
	out=$(capture STX_TILLLP1)
	echo "$out"
	echo "$out" | grep -q '"status":"ok"' || fail "capture: $out"
	echo "$out" | grep -q '"state":"printed"' || fail "not printed: $out"
	[ "$(copies STX_TILLLP1)" = 1 ] || fail "$(copies STX_TILLLP1) copies on the paper"
	grep -a -q 'Umsatz erfasst' "$PAPER" || fail "receipt text not on the paper"
	# The POS asks again: answered from the journal, no second start/cash, no second print.
	out=$(capture STX_TILLLP1)
	echo "$out" | grep -q '"replayed":true' || fail "repeat not replayed: $out"
	[ "$(start_count STX_TILLLP1)" = 1 ] || fail "start/cash called $(start_count STX_TILLLP1) times"
	[ "$(copies STX_TILLLP1)" = 1 ] || fail "repeat printed again"
}

s_capture_usb() {
	set_env ECRD_PRINTER usb:04b8:0e15
	restart_ecrd
	local out
	out=$(capture STX_TILLUSB1)
	echo "$out"
	echo "$out" | grep -q '"state":"printed"' || fail "not printed over libusb: $out"
	[ "$(copies STX_TILLUSB1)" = 1 ] || fail "$(copies STX_TILLUSB1) copies"
	runuser -u pos -- ecrd status
	set_env ECRD_PRINTER lp:/dev/usb/lp0
	systemctl stop ecrd.service
	# libusb gave the interface back to usblp when ecrd let go of it.
	wait_for 10 lp_present || { till-gadget unplug; sleep 1; till-gadget plug; wait_for 20 lp_present; note "lp0 needed a replug after usb:"; }
	restart_ecrd
}

s_unplug_before_job() {
	till-gadget unplug
	wait_for 10 sh -c '! test -e /dev/usb/lp0'
	local out
	out=$(capture STX_TILLUNPLUG1)
	echo "$out"
	echo "$out" | grep -q '"status":"ok"' || fail "capture refused: $out"
	echo "$out" | grep -q '"state":"queued"' || fail "job not queued while unplugged: $out"
	runuser -u pos -- ecrd status && fail "status says ready with the printer unplugged"
	till-gadget plug
	wait_for 60 printed STX_TILLUNPLUG1 || fail "not printed after replug"
	sleep 2
	[ "$(copies STX_TILLUNPLUG1)" = 1 ] || fail "$(copies STX_TILLUNPLUG1) copies after replug"
	[ "$(start_count STX_TILLUNPLUG1)" = 1 ]
}

# long_job TAG: a receipt of 5000 lines "TAG line N" and a last line "END OF TAG", sent to
# /v1/receipts in the background by the POS (about 230 KB on the paper: far more than usblp's
# and the gadget's buffers, about 90 KB, so a printer that stops reading makes ecrd's USB
# write block mid-job).
long_job() {
	{
		printf '['
		seq 1 5000 | sed "s/.*/{\"type\":\"textline\",\"value\":{\"text\":\"$1 line & ..............................\"}},/"
		printf '{"type":"textline","value":{"text":"END OF %s"}}]' "$1"
	} >"/tmp/$1.json"
	chmod 644 "/tmp/$1.json"
	pos_curl -X POST -H 'Content-Type: application/json' --data-binary "@/tmp/$1.json" http://ecrd/v1/receipts >"/tmp/$1.out" &
}

# whole_after OFFSET TAG: the last copy of TAG's long job after OFFSET on the paper is whole.
whole_after() {
	local lines
	lines=$(tail -c +$(($1 + 1)) "$PAPER" | grep -a -o "$2 line [0-9]*" | tail -n 5000)
	[ "$(echo "$lines" | head -n1)" = "$2 line 1" ] && [ "$(echo "$lines" | sort -u | wc -l)" = 5000 ] &&
		tail -c +$(($1 + 1)) "$PAPER" | grep -a -q "END OF $2"
}

s_unplug_mid_job() {
	# The printer is pulled while ecrd is writing a job to it (the printer has taken 8 KB and
	# stopped, ecrd's write is blocked), with a capture's receipt queued behind.
	local before
	before=$(stat -c %s "$PAPER")
	echo $((before + 8192)) >"$CTL/stall-at"
	long_job UNPLUG
	wait_for 60 sh -c "[ \$(stat -c %s $PAPER) -ge $((before + 8192)) ]" || fail "long job never started"
	capture STX_TILLUNPLUG2 | tee /tmp/cap.out
	grep -q '"state":"queued"' /tmp/cap.out || fail "receipt not queued behind the long job"
	till-gadget unplug
	note "unplugged after $(($(stat -c %s "$PAPER") - before)) bytes"
	sleep 2
	rm -f "$CTL/stall-at"
	till-gadget plug
	wait_for 120 printed STX_TILLUNPLUG2 || fail "the receipt never printed after replug"
	whole_after "$before" UNPLUG || fail "the interrupted job was not printed whole after replug"
	tail -c +$((before + 1)) "$PAPER" | grep -a -o 'END OF UNPLUG\|STX_TILLUNPLUG2' | tail -n 2 | tr '\n' ' ' |
		grep -q 'END OF UNPLUG STX_TILLUNPLUG2' || fail "not in order"
	note "receipt copies $(copies STX_TILLUNPLUG2)"
	[ "$(start_count STX_TILLUNPLUG2)" = 1 ]
}

s_paper_out() {
	touch "$CTL/paper-out"
	local out
	out=$(capture STX_TILLPAPER1)
	echo "$out"
	echo "$out" | grep -q '"state":"queued"' || fail "job not queued with paper out: $out"
	pos_curl http://ecrd/v1/printer | tee /tmp/printer.json
	grep -q paper_out /tmp/printer.json || fail "printer state is not paper_out"
	[ "$(copies STX_TILLPAPER1)" = 0 ] || fail "printed with paper out"
	rm -f "$CTL/paper-out"
	wait_for 30 printed STX_TILLPAPER1 || fail "not printed after paper came back"
	sleep 2
	[ "$(copies STX_TILLPAPER1)" = 1 ]
}

s_restart_with_job() {
	touch "$CTL/paper-out"
	capture STX_TILLRESTART1 | grep -q '"state":"queued"' || fail "not queued"
	systemctl restart ecrd.service
	wait_for 30 systemctl is-active -q ecrd.service
	rm -f "$CTL/paper-out"
	wait_for 30 printed STX_TILLRESTART1 || fail "queued job lost across restart"
	sleep 2
	[ "$(copies STX_TILLRESTART1)" = 1 ] || fail "$(copies STX_TILLRESTART1) copies"
	[ "$(start_count STX_TILLRESTART1)" = 1 ]
}

s_stop_with_job_on_paper() {
	touch "$CTL/slow"
	local before
	before=$(stat -c %s "$PAPER")
	capture STX_TILLSTOP1 >/tmp/cap.out &
	wait_for 30 sh -c "[ \$(stat -c %s $PAPER) -gt $before ]" || fail "job never started"
	local t0=$(date +%s)
	systemctl stop ecrd.service
	note "stop took $(($(date +%s) - t0))s"
	wait || true
	rm -f "$CTL/slow"
	# SIGTERM let the daemon hand the whole job to the printer before it exited: with ecrd
	# stopped, everything that still arrives was sent before the stop.
	wait_for 30 sh -c "tail -c +$((before + 1)) $PAPER | grep -a -q '7,96 EUR'" || fail "stop cut the job short"
	printed STX_TILLSTOP1 || fail "the job's start is not on the paper"
	systemctl start ecrd.service
	sleep 3
	note "copies $(copies STX_TILLSTOP1)"
	[ "$(start_count STX_TILLSTOP1)" = 1 ]
}

s_journal_errors() {
	# A bad setting: ecrd exits 2, is not restarted (RestartPreventExitStatus=2), says why.
	cp /etc/ecrd/ecrd.env /tmp/ecrd.env.good
	set_env ECRD_PRINTER bogus:/dev/null
	systemctl restart ecrd.service || true
	sleep 2
	systemctl is-failed -q ecrd.service || fail "ecrd with a bad printer URI is not failed"
	cp /tmp/ecrd.env.good /etc/ecrd/ecrd.env
	systemctl reset-failed ecrd.service
	restart_ecrd
	# ecrd logs in the journal's native protocol under systemd: levels are priorities, and
	# fields journal fields a technician filters on.
	journalctl -u ecrd -p err -o cat --no-pager | tail -n 5 | tee /tmp/err.txt
	grep -q 'ecrd not started' /tmp/err.txt || fail "the start failure is not logged as an error (-p err)"
	# Nothing so far stopped the print worker: no start, stop or unplug may have been taken
	# for a daemon that does not work.
	if journalctl -u ecrd -p err -o cat --no-pager | grep -q 'watchdog not fed'; then
		fail "a working daemon logged that its watchdog was not fed"
	fi
	journalctl -u ecrd -p warning -o cat --no-pager | grep -q 'job held' || fail "the held jobs are not logged as warnings"
	journalctl -u ecrd TRANSACTION_ID=STX_TILLLP1 -o cat --no-pager | grep -q '^captured' ||
		fail "no TRANSACTION_ID field to filter a capture's lines on"
	note "-p err: $(journalctl -u ecrd -p err -o cat --no-pager | wc -l) lines"
}

s_missing_credential() {
	# What systemd does with LoadCredential= of a file that is not there (an OAuth till has
	# no /etc/ecrd/token): recorded, so README.md's OAuth advice matches this systemd.
	mv /etc/ecrd/token /tmp/token.saved
	local rc=0
	systemctl restart ecrd.service || rc=$?
	journalctl -u ecrd -o cat --no-pager -n 3 | tee /tmp/mc.txt
	if [ $rc = 0 ]; then
		mv /tmp/token.saved /etc/ecrd/token
		fail "ecrd started without its credential file"
	fi
	grep -q '243/CREDENTIALS' /tmp/mc.txt && note "without /etc/ecrd/token: 243/CREDENTIALS" || note "without /etc/ecrd/token: start failed"
	mv /tmp/token.saved /etc/ecrd/token
	systemctl reset-failed ecrd.service || true
	restart_ecrd
}

s_oauth() {
	# Fault 3: following ecrd.env's OAuth comments must give a running daemon. An OAuth till
	# has no /etc/ecrd/token, so the drop-in the comments give replaces the unit's credential.
	cp /etc/ecrd/ecrd.env /tmp/ecrd.env.good
	mv /etc/ecrd/token /tmp/token.saved
	sed -i 's/^ECRD_TOKEN_FILE=/#ECRD_TOKEN_FILE=/' /etc/ecrd/ecrd.env
	set_env ECRD_OAUTH_CLIENT_ID "$(cat /run/fakesecupay.client.id)"
	set_env ECRD_OAUTH_CLIENT_SECRET_FILE client-secret
	set_env ECRD_OAUTH_GRANT client_credentials
	install -m 0600 /run/fakesecupay.client.secret /etc/ecrd/client-secret
	mkdir -p /etc/systemd/system/ecrd.service.d
	printf '[Service]\nLoadCredential=\nLoadCredential=client-secret:/etc/ecrd/client-secret\n' >/etc/systemd/system/ecrd.service.d/override.conf
	systemctl daemon-reload
	local rc=0
	restart_ecrd || rc=$?
	journalctl -u ecrd -o cat --no-pager -n 5
	if [ $rc = 0 ]; then
		capture STX_TILLOAUTH1 | tee /tmp/cap.out
		grep -q '"state":"printed"' /tmp/cap.out || rc=1
	fi
	rm -rf /etc/systemd/system/ecrd.service.d /etc/ecrd/client-secret
	cp /tmp/ecrd.env.good /etc/ecrd/ecrd.env
	mv /tmp/token.saved /etc/ecrd/token
	# The OAuth token replaced the static one at the fake, as secupay does; a fresh fake
	# accepts the static token again (its call log is on disk and keeps counting).
	systemctl restart fakesecupay.service
	wait_for 20 curl -sf -o /dev/null "$FAKE/_fake/counts"
	systemctl daemon-reload
	systemctl reset-failed ecrd.service || true
	restart_ecrd
	[ $rc = 0 ] || fail "OAuth as ecrd.env describes it did not capture"
}

s_power_cut_setup() {
	# The power goes while ecrd is writing a job the printer has stopped taking (a long
	# receipt, the printer stalled part-way: the USB write blocks), with a capture's receipt
	# queued behind it. The host kills QEMU; power-cut-reboot checks the next boot.
	local before
	before=$(stat -c %s "$PAPER")
	echo "$before" >"$S/results/cut.offset"
	echo $((before + 8192)) >"$CTL/stall-at"
	long_job CUT
	wait_for 60 sh -c "[ \$(stat -c %s $PAPER) -ge $((before + 8192)) ]" || fail "long job never started"
	sleep 2
	capture STX_TILLCUT1 | tee /tmp/cap.out
	grep -q '"state":"queued"' /tmp/cap.out || fail "the capture's receipt is not queued behind the stalled job"
	note "cut after $(($(stat -c %s "$PAPER") - before)) bytes of the long job"
	grep -a -q 'END OF CUT' "$PAPER" && fail "the long job finished before the cut"
	echo "$(start_count STX_TILLCUT1)" >"$S/results/cut.starts"
}

# --- phase after-cut -----------------------------------------------------------------------
s_power_cut_reboot() {
	local before
	before=$(cat "$S/results/cut.offset")
	wait_for 60 systemctl is-active -q ecrd.service || fail "ecrd not started at boot"
	# The long job is printed again, whole, then the capture's receipt behind it.
	wait_for 120 printed STX_TILLCUT1 || fail "the queued receipt did not print after boot"
	whole_after "$before" CUT || fail "the long job was not printed whole after boot"
	# In order: a whole copy of the receipt follows the last copy of the long job. (A copy
	# printed before the cut whose printed mark the cut took comes out again: the documented
	# duplicate, never a loss.)
	local end rcpt
	end=$(tail -c +$((before + 1)) "$PAPER" | grep -a -b -o 'END OF CUT' | tail -n 1 | cut -d: -f1)
	rcpt=$(tail -c +$((before + 1)) "$PAPER" | grep -a -b -o 'STX_TILLCUT1' | tail -n 1 | cut -d: -f1)
	[ -n "$end" ] && [ -n "$rcpt" ] && [ "$rcpt" -gt "$end" ] || fail "not in order after boot (long job ends at $end, receipt at $rcpt)"
	note "receipt copies $(copies STX_TILLCUT1)"
	# The POS asks again: replayed, not captured.
	local out
	out=$(capture STX_TILLCUT1)
	echo "$out"
	echo "$out" | grep -q '"replayed":true' || fail "repeat after the cut: $out"
	curl -s "$FAKE/_fake/counts"
	echo
	[ "$(start_count STX_TILLCUT1)" = 1 ] || fail "start/cash for the cut payment called $(start_count STX_TILLCUT1) times"
	# And nothing else was captured twice, over the whole run and both boots.
	curl -s "$FAKE/_fake/counts" | tr '{,}' '\n\n\n' | grep '"STX_' | grep -v ':1$' && fail "a payment was captured more than once" || true
	note "start/cash total $(total_start_cash)"
}

s_upgrade() {
	local next
	next=$(ls "$S"/dist/ecrd_*+next*.deb | head -n1)
	touch "$CTL/paper-out"
	capture STX_TILLUPG1 | grep -q '"state":"queued"' || fail "not queued before the upgrade"
	local pid0
	pid0=$(systemctl show -p MainPID --value ecrd.service)
	# Unattended, as a fleet upgrades: a conffile the admin edited is kept (and the new one
	# left beside it as ecrd.env.dpkg-dist) when the package ships a changed one.
	apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$next" </dev/null
	local want
	want=$(dpkg-query -W -f='${Version}' ecrd)
	[ "$(ecrd version)" = "ecrd $want" ] || fail "version after upgrade: $(ecrd version)"
	[ "$(systemctl show -p MainPID --value ecrd.service)" != "$pid0" ] || fail "service not restarted by the upgrade"
	grep -q "^ECRD_SECUPAY_URL=$FAKE" /etc/ecrd/ecrd.env || fail "the admin's ecrd.env was not kept"
	systemctl is-enabled ecrd.socket ecrd.service
	rm -f "$CTL/paper-out"
	wait_for 30 printed STX_TILLUPG1 || fail "queued job lost in the upgrade"
	capture STX_TILLUPG2 | grep -q '"state":"printed"' || fail "capture after upgrade"
	note "$want"
}

s_purge() {
	apt-get purge -y ecrd </dev/null | tee /tmp/purge.txt
	! test -e /usr/bin/ecrd || fail "binary left"
	! test -e /usr/lib/systemd/system/ecrd.service || fail "unit left"
	! test -e /etc/ecrd/ecrd.env || fail "conffile left"
	! test -e /etc/systemd/system/sockets.target.wants/ecrd.socket || fail "enable symlink left"
	! test -S "$SOCK" || fail "socket left"
	! getent group ecrd-pos || fail "ecrd-pos left"
	test -d /var/lib/ecrd/journal || fail "journal removed without being asked"
	getent passwd ecrd || fail "ecrd user removed while its state is kept"
	test -e /etc/ecrd/token || fail "the admin's token was removed"
	# Asked: state and user go too.
	local deb
	deb=$(ls "$S"/dist/ecrd_*.deb | grep -v '+next' | head -n1)
	apt-get install -y "$deb" </dev/null >/dev/null
	ECRD_PURGE_STATE=yes apt-get purge -y ecrd </dev/null
	! test -e /var/lib/ecrd || fail "state kept although asked"
	! getent passwd ecrd || fail "ecrd user left"
	! getent group ecrd || fail "ecrd group left"
	dpkg -l ecrd 2>/dev/null | grep -q '^ii' && fail "still installed" || true
}

# rss PID: the resident memory of PID as /proc shows it, in MiB: all, anonymous, files; and
# whether the kernel may give it transparent huge pages (Debian's kernels do, unless the
# process says no: cmd/ecrd/hugepages.go).
rss() {
	awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s %.1f MiB  ", $1, $2 / 1024 } /^THP_enabled:/ { printf "%s %s  ", $1, $2 }' "/proc/$1/status"
}
ecrd_pid() { systemctl show -p MainPID --value ecrd.service; }
healthy() { pos_curl http://ecrd/healthz 2>/dev/null | grep -q '"status":"ok"'; }

# The packaged daemon's memory on Debian's own kernel, under systemd, with the printer on the
# USB stack: after N captures in a row (posload: one keep-alive connection, each answer
# captured and printed; N from the host, TILL_MEMORY_CAPTURES), and idle after a restart on
# that history. README "Performance" has the build machine's figures, whose kernel does not
# give huge pages unasked.
s_memory() {
	local n pid before
	n=$(cat "$S/memory-captures" 2>/dev/null || echo 1000)
	restart_ecrd
	wait_for 30 healthy || fail "not healthy after the restart"
	pid=$(ecrd_pid)
	note "$(cat /sys/kernel/mm/transparent_hugepage/enabled); started: $(rss "$pid")"
	before=$(total_start_cash)
	runuser -u pos -- /usr/local/sbin/posload -n "$n" -prefix STX_MEM || fail "posload"
	[ "$(ecrd_pid)" = "$pid" ] || fail "the daemon restarted during the run"
	note "after $n captures: $(rss "$pid")"
	local after
	after=$(total_start_cash)
	[ $((after - before)) = "$n" ] || fail "$((after - before)) start/cash calls for $n captures"
	restart_ecrd
	wait_for 30 healthy || fail "not healthy after the restart"
	note "idle after a restart on that history: $(rss "$(ecrd_pid)")"
}

case "${1:?phase}" in
main)
	: >"$R/results.txt"
	scenario bed-setup bed_setup || { echo done >"$R/main.done"; exit 1; }
	scenario install s_install
	scenario security-score s_security
	scenario configure-pos-user s_configure
	scenario capture-lp s_capture_lp
	scenario capture-usb s_capture_usb
	scenario unplug-before-job s_unplug_before_job
	scenario unplug-mid-job s_unplug_mid_job
	scenario paper-out s_paper_out
	scenario restart-with-job s_restart_with_job
	scenario stop-with-job-on-paper s_stop_with_job_on_paper
	scenario journal-errors s_journal_errors
	scenario missing-credential s_missing_credential
	scenario oauth-as-documented s_oauth
	scenario power-cut s_power_cut_setup
	echo done >"$R/main.done"
	sync
	# The host kills QEMU now; sleep so the guest shuts nothing down cleanly.
	touch "$S/killme"
	sleep 600
	;;
after-cut)
	scenario power-cut-reboot s_power_cut_reboot
	scenario upgrade s_upgrade
	scenario memory s_memory
	scenario purge s_purge
	echo done >"$R/after-cut.done"
	;;
esac
