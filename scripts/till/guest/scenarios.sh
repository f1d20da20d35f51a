#!/usr/bin/env bash
# scenarios.sh PHASE — the till acceptance scenarios, run inside the guest as root.
# The scenario runner and the helpers are in lib.sh, beside this file.
#
# Phase "main": install the .deb and drive the till (ends with a power cut: the host kills QEMU).
# Phase "after-cut": the same disk booted again: the cut job, upgrade, purge.
# Phase "short": one boot, a few scenarios of main and the purge (the emulated ARM till of
# make test-till-arm64, where TCG makes the whole list too slow).
set -u
. "$(dirname "$0")/lib.sh"

# --- phase main ----------------------------------------------------------------------------
# exposure: systemd-analyze security's overall exposure level of ecrd.service.
exposure() {
	systemd-analyze security ecrd.service >/tmp/sec.txt
	grep -o 'Overall exposure level for ecrd.service: [0-9.]*' /tmp/sec.txt | awk '{print $NF}'
}

s_security() {
	local score
	score=$(exposure)
	tail -n 25 /tmp/sec.txt
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
	[ "$(start_count STX_TILLUSB1)" = 1 ] || fail "start/cash called $(start_count STX_TILLUSB1) times"
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

# queue_empty: ecrd's database holds no queued job (every job it owes is on paper).
queue_empty() { [ "$(db "SELECT count(*) FROM jobs WHERE state = 'queued'")" = 0 ]; }

# receipt_after_long OFFSET: after OFFSET, the long job CUT is on the paper whole and the
# capture's receipt follows its last copy.
receipt_after_long() {
	local end rcpt
	whole_after "$1" CUT || return 1
	end=$(tail -c +$(($1 + 1)) "$PAPER" | grep -a -b -o 'END OF CUT' | tail -n 1 | cut -d: -f1)
	rcpt=$(tail -c +$(($1 + 1)) "$PAPER" | grep -a -b -o 'STX_TILLCUT1' | tail -n 1 | cut -d: -f1)
	[ -n "$end" ] && [ -n "$rcpt" ] && [ "$rcpt" -gt "$end" ]
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
	# (The message text begins with the id too, so that a plain grep finds the line.)
	journalctl -u ecrd TRANSACTION_ID=STX_TILLLP1 -o cat --no-pager | grep -q '^\(STX_TILLLP1: \)\?captured$' ||
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

# refused_start REASON: `systemctl restart ecrd` on the config as it is fails: ecrd exits 2
# before it is ready, systemd does not start it again (RestartPreventExitStatus=2), and ecrd's
# error line of that start names REASON in its message, once: `journalctl -u ecrd` and
# `systemctl status ecrd` show only the message, and a technician reads them first.
refused_start() {
	local since rc=0 msg
	since=$(date +%s)
	systemctl restart ecrd.service || rc=$?
	[ $rc != 0 ] || fail "systemctl restart ecrd succeeded on a config --check refuses"
	systemctl is-failed -q ecrd.service || fail "ecrd.service is $(systemctl is-active ecrd.service), not failed"
	[ "$(systemctl show -p ExecMainStatus --value ecrd.service)" = 2 ] ||
		fail "ecrd exited $(systemctl show -p ExecMainStatus --value ecrd.service), not 2"
	# (journald may store the line a moment after systemd saw the process exit.)
	wait_for 10 sh -c "journalctl -u ecrd SYSLOG_IDENTIFIER=ecrd --since @$since -p err -o cat --no-pager | grep -q -F -e '$1'" ||
		fail "no error message naming '$1' in the journal of the start: $(journalctl -u ecrd --since "@$since" -o verbose --no-pager | tail -n 40)"
	msg=$(journalctl -u ecrd SYSLOG_IDENTIFIER=ecrd --since "@$since" -o cat --no-pager | grep -F -e "$1")
	[ "$(echo "$msg" | wc -l)" = 1 ] || fail "the reason shows more than once in the journal of the start: $msg"
	echo "$msg" | grep -q '^ecrd not started: ' || fail "the refused start's message: $msg"
	# ERROR= still carries it, for journalctl ERROR=… and log shippers.
	journalctl -u ecrd SYSLOG_IDENTIFIER=ecrd --since "@$since" -p err -o verbose --no-pager | grep -q -F -e "ERROR=" ||
		fail "no ERROR= field on the refused start's entry"
	note "start: exit 2, journal '$msg'"
}

s_serve_check() {
	# `ecrd serve --check` with the installed config, as the unit runs the daemon; then the
	# typos an admin makes, each refused by --check (exit 2, a line naming it) and by the start
	# (issue 21); the config put back, ecrd captures again.
	local out rc
	save_env
	rc=0
	out=$(ecrd_check) || rc=$?
	echo "$out"
	[ $rc = 0 ] || fail "--check of the installed config exits $rc"
	echo "$out" | grep -q '^error' && fail "an error in the installed config"
	echo "$out" | grep -q "^ok  *--secupay-url: $FAKE: a secupay fake on this machine$" || fail "--check does not name the fake secupay: $out"
	echo "$out" | grep -q '^ok  *--token-file: .* is readable and holds a token$' || fail "--check did not read the credential"
	echo "$out" | grep -q '^ok  *--printer: lp:/dev/usb/lp0$' || fail "printer: $out"
	# The package's own URL (the conffile as shipped), given as a flag: the testing system.
	out=$(ecrd_check --secupay-url https://connect-testing.secuconnect.com)
	echo "$out"
	echo "$out" | grep -q "^ok  *--secupay-url: https://connect-testing.secuconnect.com: secupay's testing system: no real money moves$" ||
		fail "--check does not name the testing system: $out"
	note "--check of the installed config: exit 0, the fake secupay (local); of the package's URL: testing"
	# Without the unit, as a technician runs it: `sudo ecrd serve --check` reads ecrd.env
	# itself and finds the credential where LoadCredential= takes it from, /etc/ecrd/token.
	rc=0
	out=$(ecrd serve --check 2>&1) || rc=$?
	echo "$out"
	[ $rc = 0 ] || fail "--check by root without the unit exits $rc: $out"
	echo "$out" | grep -q '^ok  *--env-file: /etc/ecrd/ecrd.env read$' || fail "--check did not read ecrd.env: $out"
	echo "$out" | grep -q '^ok  *--token-file: /etc/ecrd/token is readable and holds a token$' ||
		fail "--check by root did not read /etc/ecrd/token: $out"
	# ecrd.env read into a root shell (no credentials directory) comes to the same.
	rc=0
	out=$(set -a && . /etc/ecrd/ecrd.env && set +a && ecrd serve --check 2>&1) || rc=$?
	echo "$out"
	[ $rc = 0 ] || fail "--check with ecrd.env sourced by root exits $rc: $out"
	note "--check by root without the unit: exit 0, /etc/ecrd/token read (also with ecrd.env sourced)"

	# A file printer in a directory that is not there.
	set_env ECRD_PRINTER file:/no/such/dir/p.bin
	rc=0
	out=$(ecrd_check) || rc=$?
	echo "$out"
	[ $rc = 2 ] || fail "--check with a printer in a missing directory exits $rc"
	note "printer file:/no/such/dir/p.bin: --check exit 2"
	echo "$out" | grep -q '^error  *--printer: printer file:/no/such/dir/p.bin: directory /no/such/dir does not exist$' ||
		fail "--check does not name the printer's directory: $out"
	refused_start 'directory /no/such/dir does not exist'
	cp "$ENV_SAVED" /etc/ecrd/ecrd.env

	# https typed as http.
	set_env ECRD_SECUPAY_URL http://connect-testing.secuconnect.com
	rc=0
	out=$(ecrd_check) || rc=$?
	echo "$out"
	[ $rc = 2 ] || fail "--check with an http secupay URL exits $rc"
	note "secupay URL http://connect-testing…: --check exit 2"
	echo "$out" | grep -q '^error  *--secupay-url: base URL "http://connect-testing.secuconnect.com": plain http is allowed only to loopback; use https$' ||
		fail "--check does not name the URL: $out"
	refused_start 'plain http is allowed only to loopback; use https'

	restore_env
	out=$(capture STX_TILLCHECK1)
	echo "$out"
	echo "$out" | grep -q '"state":"printed"' || fail "no capture after the config was put back: $out"
	[ "$(start_count STX_TILLCHECK1)" = 1 ] || fail "start/cash called $(start_count STX_TILLCHECK1) times"

	# Which secupay system the running till talks to: ecrd status, --json, /v1/status, the
	# info metric (the package enables no metrics listener: /metrics on the socket).
	out=$(runuser -u pos -- ecrd status) || true
	echo "$out"
	echo "$out" | grep -q '^secupay:  local (a secupay fake on this machine)$' || fail "ecrd status: $out"
	out=$(runuser -u pos -- ecrd status --json) || true
	echo "$out" | grep -q '"environment": *"local"' || fail "ecrd status --json: $out"
	pos_curl http://ecrd/v1/status | tee /tmp/status.json | grep -q '"environment": *"local"' || fail "/v1/status: $(cat /tmp/status.json)"
	pos_curl http://ecrd/metrics | grep '^ecrd_secupay_environment_info' | tee /tmp/envinfo.txt
	grep -q '^ecrd_secupay_environment_info{environment="local"} 1$' /tmp/envinfo.txt || fail "no environment info metric"
	grep -q '^ECRD_METRICS_LISTEN=' /etc/ecrd/ecrd.env && note "ecrd.env sets a metrics listener: not checked"
	note "status, --json, /v1/status and the metric: local"
}

# web_curl ORIGIN CURL-ARGS...: a request to the browser listener as a page from ORIGIN sends
# it ('-': no Origin, as curl or a script): the answer's headers, its body, then a line
# "HTTP <status>".
WEB=http://127.0.0.1:8765
web_curl() {
	local origin=()
	[ "$1" = - ] || origin=(-H "Origin: $1")
	shift
	curl -sS --max-time 90 -D - -w '\nHTTP %{http_code}\n' "${origin[@]}" "$@"
}

# refused_at_gate ID STATUS CODE ORIGIN CURL-ARGS...: a capture of ID through the browser
# listener is answered STATUS with error CODE by the gate, before the API: nothing journaled,
# nothing sent to secupay. The answer is left in out.
refused_at_gate() {
	local id=$1 want=$2 code=$3 o=$4
	shift 4
	out=$(web_curl "$o" -X POST "$@" "$WEB/v1/transactions/$id/cash")
	echo "$out"
	[ "$(echo "$out" | tail -n1)" = "HTTP $want" ] || fail "$id: want $want: $out"
	echo "$out" | grep -q "\"code\":\"$code\"" || fail "$id: want $code: $out"
	curl -s "$FAKE/_fake/counts" | grep -q "$id" && fail "$id reached secupay"
	[ "$(db "SELECT count(*) FROM captures WHERE id = '$id'")" = 0 ] || fail "$id was journaled"
}

# preflight ORIGIN: the CORS preflight Chromium sends before a page from ORIGIN may POST to the
# listener, asking for Private Network Access (a public page calling a loopback address).
preflight() {
	web_curl "$1" -X OPTIONS -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization' \
		-H 'Access-Control-Request-Private-Network: true' "$WEB/v1/transactions/STX_TILLWEB5/cash"
}

s_browser_listener() {
	# The browser listener as ecrd.env documents it (issue 22): on, `ecrd pair` as the POS's
	# user, then what a browser page from the allowed origin and from another can do.
	local out tok pos=https://pos.example.com evil=https://evil.example.net score_off score_on
	save_env
	set_env ECRD_HTTP_LISTEN 127.0.0.1:8765
	set_env ECRD_HTTP_TOKEN_FILE /etc/ecrd/http-token
	set_env ECRD_ALLOW_ORIGIN $pos
	grep '^ECRD_HTTP\|^ECRD_ALLOW' /etc/ecrd/ecrd.env
	restart_ecrd || fail "ecrd did not start with the listener on"
	out=$(runuser -u pos -- ecrd pair 2>&1)
	echo "$out"
	echo "$out" | grep -q "^url: *$WEB$" || fail "ecrd pair: $out"
	echo "$out" | grep -q "^origins: *$pos$" || fail "ecrd pair: $out"
	echo "$out" | grep -q '^ecrd pair:' && fail "ecrd pair warns: $out"
	tok=$(echo "$out" | sed -n 's/^token: *//p')
	[ -n "$tok" ] && [ "$tok" = "$(cat /etc/ecrd/http-token)" ] || fail "ecrd pair's token is not /etc/ecrd/http-token's"

	# The allowed page with pair's token: captured and printed, once.
	out=$(web_curl $pos -X POST -H "Authorization: Bearer $tok" $WEB/v1/transactions/STX_TILLWEB1/cash)
	echo "$out"
	[ "$(echo "$out" | tail -n1)" = "HTTP 200" ] || fail "the allowed origin with the token: $out"
	echo "$out" | grep -q '"status":"ok"' || fail "not captured: $out"
	echo "$out" | grep -qi "^Access-Control-Allow-Origin: $pos" || fail "no CORS header for the allowed page"
	wait_for 30 printed STX_TILLWEB1 || fail "not printed"
	[ "$(copies STX_TILLWEB1)" = 1 ] || fail "$(copies STX_TILLWEB1) copies"
	[ "$(start_count STX_TILLWEB1)" = 1 ] || fail "start/cash called $(start_count STX_TILLWEB1) times"

	# Refused at the gate, before the API: nothing journaled, nothing sent to secupay.
	refused_at_gate STX_TILLWEB2 403 origin_not_allowed $evil -H "Authorization: Bearer $tok"
	echo "$out" | grep -qi '^Access-Control-Allow-Origin' && fail "a CORS header for a foreign page"
	refused_at_gate STX_TILLWEB3 421 host_not_allowed $pos -H "Authorization: Bearer $tok" -H 'Host: till.evil.example.net:8765'
	refused_at_gate STX_TILLWEB4 401 unauthorized $pos
	echo "$out" | grep -qi '^WWW-Authenticate: Bearer realm="ecrd"' || fail "401 without WWW-Authenticate"

	# Preflights, as Chromium sends them before a public page may call a loopback address.
	out=$(preflight $pos)
	echo "$out"
	[ "$(echo "$out" | tail -n1)" = "HTTP 204" ] || fail "preflight from the allowed origin: $out"
	echo "$out" | grep -qi "^Access-Control-Allow-Origin: $pos" || fail "preflight: no Allow-Origin"
	echo "$out" | grep -qi '^Access-Control-Allow-Methods: GET, POST' || fail "preflight: no Allow-Methods"
	echo "$out" | grep -qi '^Access-Control-Allow-Headers: .*Authorization' || fail "preflight: no Allow-Headers"
	echo "$out" | grep -qi '^Access-Control-Allow-Private-Network: true' || fail "preflight: no Allow-Private-Network"
	out=$(preflight $evil)
	echo "$out"
	[ "$(echo "$out" | tail -n1)" = "HTTP 403" ] || fail "preflight from a foreign origin: $out"
	echo "$out" | grep -qi '^Access-Control-Allow-' && fail "preflight from a foreign origin got CORS headers: $out"

	# The sandbox with the listener on: no worse than security-score's, with it off.
	score_on=$(exposure)
	score_off=$(sed -n 's/^[A-Z]* security-score [0-9.]* score \([0-9.]*\).*/\1/p' "$R/results.txt")
	note "exposure: listener off $score_off (security-score), on $score_on"
	awk "BEGIN{exit !($score_on <= ${score_off:-1.5})}" || fail "exposure $score_on with the listener on > $score_off"

	restore_env
	web_curl - $WEB/healthz && fail "the listener still answers with ecrd.env put back"
	note "listener off again"
}

# in_doubt_answer OUT WHAT: OUT (capture_http's) is the in-doubt answer — 504, outcome
# in_doubt, neither captured nor refused — with a retry_after that is what is left of the 2-min
# in-doubt wait on the steady clock, whatever the wall clock did: ≥ 90 s (under 30 s have run
# since the call), ≤ 121 s (not stretched by a step back). It sets retry to that retry_after.
# (Matched in bash, without a process: under TCG the asks must all fit in secupay's 25 s.)
in_doubt_answer() {
	[[ $1 == *$'\nHTTP 504' ]] || fail "$2: not 504: $1"
	[[ $1 == *'"outcome":"in_doubt"'* ]] || fail "$2: not in doubt: $1"
	[[ $1 == *'"code":"secupay_timeout"'* || $1 == *'"code":"in_doubt"'* ]] || fail "$2: code: $1"
	[[ $1 != *'"status":"ok"'* && $1 != *secupay_refused* ]] || fail "$2: settled: $1"
	retry=
	[[ $1 =~ \"retry_after\":([0-9]+) ]] && retry=${BASH_REMATCH[1]}
	[ -n "$retry" ] && [ "$retry" -ge 90 ] && [ "$retry" -le 121 ] || fail "$2: retry_after '$retry' is not what is left of the in-doubt wait"
}

# clock_steps_restore: the EXIT trap of s_clock_steps: the wall clock where it would be without
# the steps, ecrd.env as it was, ecrd restarted on it, the timers and time service it stopped
# started again. It runs whether the scenario passed or failed.
clock_steps_restore() {
	local rc=$? u
	set +e
	date -s "@$((CS_WALL0 + $(boot_seconds) - CS_UP0))" >/dev/null || rc=1
	if [ -e "$CS_ENV" ]; then
		cp "$CS_ENV" /etc/ecrd/ecrd.env && rm -f "$CS_ENV" || rc=1
	fi
	systemctl reset-failed ecrd.service 2>/dev/null
	restart_ecrd || rc=1
	for u in $CS_STOPPED; do systemctl start "$u" || rc=1; done
	note "wall clock back at $(date -u +%FT%TZ)"
	exit "$rc"
}

s_clock_steps() {
	# The wall clock steps while a capture is in doubt, and past --journal-keep: ecrd measures
	# the in-doubt wait and the journal's age on its steady clock (internal/steady), so no step
	# may make it send a second start/cash while secupay still works on the first, nor prune a
	# paid capture so that a repeat reaches secupay again. secupay takes 25 s to apply the
	# start/cash; ecrd gives up on the call after 2 s.
	local id=STX_CLOCKSTEP1 out retry up_call u notes="" lp_copies lost_copies since up_r step t_last
	local lost=STX_CLOCKLOST1 got
	CS_WALL0=$(date +%s) CS_UP0=$(boot_seconds) CS_ENV=/root/ecrd.env.clock-steps CS_STOPPED=""
	command -v sqlite3 >/dev/null || fail "no sqlite3 in the image (scripts/till/build-image.sh)"
	[ "$(db "SELECT phase FROM captures WHERE id = 'STX_TILLLP1'")" = captured ] || fail "no captured journal record of STX_TILLLP1"
	cp /etc/ecrd/ecrd.env "$CS_ENV"
	trap clock_steps_restore EXIT
	# Nothing else may set the clock meanwhile, nor act on the steps: a time service, and the
	# timers whose calendar a step of 91 days would make due (apt, dpkg backups, fstrim...).
	for u in systemd-timesyncd.service chrony.service ntpsec.service ntp.service openntpd.service \
		$(systemctl list-units --type=timer --state=active --plain --no-legend | awk '{print $1}'); do
		if systemctl is-active -q "$u"; then
			systemctl stop "$u"
			CS_STOPPED="$CS_STOPPED $u"
		fi
	done
	note "stopped:${CS_STOPPED:- nothing}"
	# The control of the prune below: a paid capture made now, before the steps.
	out=$(capture $lost)
	echo "$out" | grep -q '"state":"printed"' || fail "the control capture $lost: $out"
	set_env ECRD_SECUPAY_TIMEOUT 2s
	restart_ecrd
	fake_fault "{\"Op\":\"start\",\"ID\":\"$id\",\"Processing\":25000000000}" || fail "the fake took no fault"

	up_call=$(boot_seconds)
	out=$(capture_http $id)
	echo "$out"
	in_doubt_answer "$out" "the timed-out capture"
	notes="call: retry_after $retry"
	[ "$(start_count $id)" = 1 ] || fail "start/cash called $(start_count $id) times"

	# Within secupay's 25 s: +180 s (past the 2-min wait on the wall clock), -1 h (before the
	# call), +91 days (past --journal-keep). After each, the POS asks again.
	for step in 180 -3600 $((91 * 86400)); do
		# A test bed too slow to ask within secupay's 25 s would prove nothing: say so.
		[ $(($(boot_seconds) - up_call)) -lt 20 ] || fail "too slow: $(($(boot_seconds) - up_call))s after the call before the step of ${step}s"
		date -s "@$(($(date +%s) + step))" >/dev/null
		out=$(capture_http $id)
		t_last=$(($(boot_seconds) - up_call))
		echo "after a step of ${step}s (${t_last}s after the call): $out"
		in_doubt_answer "$out" "after a step of ${step}s"
		[ "$(start_count $id)" = 1 ] || fail "after a step of ${step}s: start/cash called $(start_count $id) times"
		notes="$notes, ${step}s: retry_after $retry"
	done
	note "in doubt after each step ($notes; the last answer ${t_last}s after the call); start/cash 1"

	# secupay has applied it: the next ask settles it as captured, and it prints, once.
	until_boot_seconds $((up_call + 27))
	out=$(capture_http $id)
	echo "$out"
	echo "$out" | grep -q '^HTTP 200$' || fail "after secupay applied it: $out"
	echo "$out" | grep -q '"status":"ok"' || fail "after secupay applied it: $out"
	wait_for 30 printed $id || fail "not printed"
	sleep 2
	[ "$(copies $id)" = 1 ] || fail "$(copies $id) copies on the paper"
	[ "$(start_count $id)" = 1 ] || fail "start/cash called $(start_count $id) times"
	note "then ok, $(echo "$out" | grep -o '"state":"[a-z]*"'), 1 copy, start/cash 1"
	journalctl -u ecrd -o cat --no-pager | grep "$id" | tee /tmp/clockstep.journal
	[ "$(grep -c "$id: capture started" /tmp/clockstep.journal)" = 1 ] || fail "the journal shows $(grep -c "$id: capture started" /tmp/clockstep.journal) start/cash attempts"
	grep -q 'settled: read back as not captured' /tmp/clockstep.journal && fail "settled as not captured while secupay worked on it"

	# With the clock 91 days on, past --journal-keep (90 days): a new life of ecrd and its
	# background prune (30 s after start) keep the paid capture of s_capture_lp; a repeat is
	# replayed from its record, not from its pruned remains, and reaches neither secupay nor
	# paper. The control shows that the prune ran and judged each record by its own clock: the
	# record of $lost, made before the steps, is stamped on no steady clock in the database
	# (as an older ecrd left its records, sqlite3 while ecrd is stopped), so it is judged by
	# its wall time, 91 days past, and pruned to its id, trans_id and payment method; every
	# record on the steady clock is young and kept. (The life started above pruned nothing it
	# could: the steps came before its 30 s, and every record was on the steady clock then.)
	lp_copies=$(copies STX_TILLLP1)
	lost_copies=$(copies $lost)
	systemctl stop ecrd.service
	got=$(db "UPDATE captures SET steady_clock = NULL, sent_steady = NULL, updated_steady = NULL WHERE id = '$lost'; SELECT changes();")
	[ "$got" = 1 ] || fail "the control's record not changed ($got)"
	since=$(date +%s)
	restart_ecrd
	up_r=$(boot_seconds)
	until [ "$(db "SELECT pruned FROM captures WHERE id = '$lost'")" = 1 ]; do
		[ "$(boot_seconds)" -lt $((up_r + 120)) ] || fail "no prune seen within 120 s of the start ($lost's record: $(db "SELECT phase, pruned, steady_clock IS NULL, updated FROM captures WHERE id = '$lost'"))"
		sleep 1
	done
	got=$(db "SELECT group_concat(id, ' ') FROM captures WHERE pruned")
	[ "$got" = "$lost" ] || fail "the prune at +91 days took '$got', want $lost alone"
	got=$(db "SELECT phase, pruned, answer IS NOT NULL FROM captures WHERE id = 'STX_TILLLP1'")
	[ "$got" = "captured|0|1" ] || fail "STX_TILLLP1's record after the prune: '$got', want captured|0|1"
	note "a prune at +91 days pruned the control on no steady clock and kept STX_TILLLP1's record whole ($(db "SELECT count(*) FROM captures WHERE NOT pruned") records kept)"
	until_boot_seconds $((up_r + 40))
	journalctl -u ecrd -o cat --no-pager --since "@$since" >/tmp/clockstep.life
	[ -s /tmp/clockstep.life ] || fail "no journal lines of ecrd's new life"
	out=$(capture_http STX_TILLLP1)
	echo "$out"
	echo "$out" | grep -q '"replayed":true' || fail "repeat of STX_TILLLP1 not replayed: $out"
	[ "$(start_count STX_TILLLP1)" = 1 ] || fail "STX_TILLLP1: start/cash called $(start_count STX_TILLLP1) times"
	sleep 2
	[ "$(copies STX_TILLLP1)" = "$lp_copies" ] || fail "STX_TILLLP1 printed again"
	journalctl -u ecrd -o cat --no-pager --since "@$since" | grep 'STX_TILLLP1' | tee -a /tmp/clockstep.life
	grep -q 'STX_TILLLP1: capture replayed from journal' /tmp/clockstep.life || fail "STX_TILLLP1 not replayed from its journal record"
	grep -q "STX_TILLLP1: capture answered from the journal's pruned record" /tmp/clockstep.life && fail "STX_TILLLP1's record was pruned"
	# The control, asked again: answered from what the prune kept, with no start/cash or copy.
	out=$(capture_http $lost)
	echo "$out"
	echo "$out" | grep -q '"replayed":true' || fail "repeat of the pruned $lost not replayed: $out"
	[ "$(start_count $lost)" = 1 ] || fail "$lost: start/cash called $(start_count $lost) times"
	sleep 1
	[ "$(copies $lost)" = "$lost_copies" ] || fail "$lost printed again"
	journalctl -u ecrd -o cat --no-pager --since "@$since" | grep -q "$lost: capture answered from the journal's pruned record" || fail "$lost not answered from its pruned record"
	note "91 days on, after the prune: STX_TILLLP1 replayed from its record, $lost from its pruned record, start/cash 1 each, no new copy"
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
	# The long job is printed again, whole, then the capture's receipt behind it. Waited for
	# by the queue, not by the paper: between the scenario's end and the cut the printer may
	# have been released and printed both, with their printed marks (not flushed) lost to the
	# cut. Then the paper shows a whole copy and the receipt before this boot's copies have
	# begun (the documented duplicate, never a loss), and only an empty queue says that
	# everything owed is on paper.
	wait_for 120 queue_empty || fail "jobs still queued 120 s after boot: $(db "SELECT id FROM jobs WHERE state = 'queued'")"
	receipt_after_long "$before" || fail "after boot, the long job not whole or the receipt not after it"
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
	start_cash_counts | grep -v ':1$' && fail "a payment was captured more than once" || true
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
	test -s /var/lib/ecrd/ecrd.db || fail "the state database removed without being asked"
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
	scenario serve-check s_serve_check
	scenario browser-listener s_browser_listener
	scenario clock-steps s_clock_steps
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
short)
	: >"$R/results.txt"
	scenario bed-setup bed_setup || { echo done >"$R/short.done"; exit 1; }
	scenario install s_install
	scenario configure-pos-user s_configure
	scenario capture-lp s_capture_lp
	scenario capture-usb s_capture_usb
	scenario unplug-before-job s_unplug_before_job
	scenario purge s_purge
	echo done >"$R/short.done"
	;;
esac
