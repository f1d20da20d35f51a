# The guest side of the till test bed shared by the suites (scenarios.sh, power-cuts.sh;
# sourced, not run): paths, the scenario runner, the POS's requests, what the paper and the
# fake secupay show, the test bed's own units, and installing and configuring the package.
# Each scenario runs in its own subshell with errexit; it passes when it returns 0. Results go
# to the host share: results/results.txt gets "PASS|FAIL name seconds [detail]" per scenario,
# results/NAME.log the scenario's own output.
set -u
S=/mnt/host
R=$S/results
PAPER=/var/lib/printersim/paper.bin
CTL=/run/printersim
SOCK=/run/ecrd/ecrd.sock
FAKE=http://127.0.0.1:8089
mkdir -p "$R"

fail() { echo "FAIL: $*"; exit 1; }
note() { echo "$*" >>"$R/.detail"; echo "$*"; }

scenario() {
	local name=$1 t0 t1 rc detail
	shift
	rm -f "$R/.detail"
	t0=$(date +%s.%N)
	(set -eE; trap 'echo "line $LINENO: $BASH_COMMAND exited $?"' ERR; "$@") >"$R/$name.log" 2>&1
	rc=$?
	t1=$(date +%s.%N)
	detail=$(cat "$R/.detail" 2>/dev/null | tr '\n' ' ')
	if [ $rc = 0 ]; then
		printf 'PASS %s %.1f %s\n' "$name" "$(awk "BEGIN{print $t1-$t0}")" "$detail" >>"$R/results.txt"
	else
		printf 'FAIL %s %.1f %s%s\n' "$name" "$(awk "BEGIN{print $t1-$t0}")" "$detail" "$(grep -m1 '^FAIL:' "$R/$name.log" || tail -n1 "$R/$name.log")" >>"$R/results.txt"
	fi
	# A failed scenario must not leave the printer stalled, out of paper or unplugged.
	rm -f "$CTL/paper-out" "$CTL/slow" "$CTL/mute" "$CTL/stall-at"
	[ -x /usr/local/sbin/till-gadget ] && till-gadget plug >/dev/null 2>&1
	# Every scenario's journal, for whoever reads a failure.
	journalctl -u ecrd --no-pager -o short-monotonic -n 60 >"$R/$name.journal" 2>&1 || true
	return $rc
}

# pos_curl: the POS app — an unprivileged user in ecrd-pos — on the local API.
pos_curl() { runuser -u pos -- curl -sS --max-time 90 --unix-socket "$SOCK" "$@"; }
capture() { pos_curl -X POST "http://ecrd/v1/transactions/$1/cash"; }
# copies ID: how many receipts for ID are on the paper (its id is printed on it).
copies() { grep -a -o "$1" "$PAPER" 2>/dev/null | wc -l; }
# total_start_cash: start/cash calls the fake secupay logged, for any transaction.
total_start_cash() { curl -s "$FAKE/_fake/counts" | grep -o '"total_start_cash":[0-9]*' | cut -d: -f2; }
# start_cash_counts: '"ID":n' per transaction the fake logged a start/cash for (its "start_cash";
# "get" counts the read-backs, which a capture in doubt makes several of).
start_cash_counts() { curl -s "$FAKE/_fake/counts" | sed -n 's/.*"start_cash":{\([^}]*\)}.*/\1/p' | tr ',' '\n' | sed '/^$/d'; }
start_count() { local n; n=$(start_cash_counts | grep -m1 "^\"$1\":" | cut -d: -f2); echo "${n:-0}"; }
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
	local t=$1; shift
	local end=$(($(date +%s) + t))
	until "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}
printed() { [ "$(copies "$1")" -ge "${2:-1}" ]; }
# boot_seconds: whole seconds since the guest booted (/proc/uptime, CLOCK_BOOTTIME): a clock
# that `date -s` does not step, for waits in a scenario that steps the wall clock (wait_for
# and the scenario's own timing read the wall clock).
boot_seconds() { cut -d. -f1 /proc/uptime; }
# until_boot_seconds T: sleep until boot_seconds reads T.
until_boot_seconds() { while [ "$(boot_seconds)" -lt "$1" ]; do sleep 0.5; done; }
# capture_http ID: capture, as capture does, with a last line "HTTP <status>".
capture_http() { pos_curl -w '\nHTTP %{http_code}\n' -X POST "http://ecrd/v1/transactions/$1/cash"; }
# fake_fault JSON: queue a secupaytest.Fault (durations in ns) in the fake secupay.
fake_fault() { [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$1" "$FAKE/_fake/fault")" = 204 ]; }
set_env() { # set_env VAR VALUE in the conffile, as an admin would edit it
	if grep -q "^#\?$1=" /etc/ecrd/ecrd.env; then
		sed -i "s|^#\?$1=.*|$1=$2|" /etc/ecrd/ecrd.env
	else
		echo "$1=$2" >>/etc/ecrd/ecrd.env
	fi
}
restart_ecrd() { systemctl restart ecrd.service; wait_for 30 systemctl is-active -q ecrd.service; }
# save_env: keep ecrd.env as it is now, for restore_env; a scenario that changes the config
# calls it first. Its EXIT trap puts the config back (and ecrd running on it) if the scenario
# ends, passed or failed, without having called restore_env: no scenario leaves it changed.
ENV_SAVED=/root/ecrd.env.saved
save_env() {
	cp /etc/ecrd/ecrd.env "$ENV_SAVED"
	trap restore_env_on_exit EXIT
}
restore_env() { # ecrd.env as save_env kept it, ecrd restarted on it
	cp "$ENV_SAVED" /etc/ecrd/ecrd.env
	rm -f "$ENV_SAVED"
	systemctl reset-failed ecrd.service 2>/dev/null || true
	restart_ecrd
}
restore_env_on_exit() {
	local rc=$?
	set +e
	if [ -e "$ENV_SAVED" ]; then
		restore_env || rc=1
		note "config put back"
	fi
	exit "$rc"
}
# ecrd_check [FLAG...]: `ecrd serve --check` as ecrd.service runs `ecrd serve`: as its user and
# groups, with its EnvironmentFile= and its LoadCredential= (ECRD_TOKEN_FILE=token is a bare
# credential name), read from the installed unit and its drop-ins. Its findings on stdout, its
# exit status. (A oneshot unit, whose start job ends with the process: the image has no D-Bus
# daemon, which systemd-run --wait and --pipe need.)
ecrd_check() {
	local props=() line unit rc=0
	unit=ecrd-check-$(date +%s%N)
	while IFS= read -r line; do
		props+=(-p "$line")
	done < <(systemctl cat ecrd.service | grep -E '^(User|Group|SupplementaryGroups|EnvironmentFile|LoadCredential)=')
	if ! systemd-run --quiet --unit="$unit" -p Type=oneshot -p StandardOutput="truncate:/run/$unit.out" "${props[@]}" \
		/usr/bin/ecrd serve --check "$@"; then
		rc=$(systemctl show -p ExecMainStatus --value "$unit.service")
		[ "${rc:-0}" != 0 ] || rc=1
	fi
	cat "/run/$unit.out" 2>/dev/null
	rm -f "/run/$unit.out"
	systemctl reset-failed "$unit.service" 2>/dev/null || true
	return "$rc"
}
# db SQL: the state database as ecrd's user reads (and, with ecrd stopped, writes) it, one
# row a line, columns split by '|'.
db() { runuser -u ecrd -- sqlite3 -batch -noheader -cmd '.timeout 5000' /var/lib/ecrd/ecrd.db "$1"; }
lp_present() { [ -c /dev/usb/lp0 ]; }

# --- the test bed's own parts (not the package) ---------------------------------------------
bed_setup() {
	install -m 0755 "$S/bin/printersim" "$S/bin/fakesecupay" "$S/bin/posload" /usr/local/sbin/
	install -m 0755 "$S/guest/gadget.sh" /usr/local/sbin/till-gadget
	cat >/etc/systemd/system/till-gadget.service <<'UNIT'
[Unit]
Description=till test bed: USB printer gadget on dummy_hcd
After=systemd-udevd.service sys-kernel-config.mount
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/till-gadget setup
[Install]
WantedBy=multi-user.target
UNIT
	cat >/etc/systemd/system/printersim.service <<'UNIT'
[Unit]
Description=till test bed: ESC/POS printer simulator on /dev/g_printer0
After=till-gadget.service
[Service]
ExecStart=/usr/local/sbin/printersim
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
	cat >/etc/systemd/system/fakesecupay.service <<'UNIT'
[Unit]
Description=till test bed: fake secupay on 127.0.0.1:8089
Before=ecrd.service
[Service]
ExecStart=/usr/local/sbin/fakesecupay -token-out /run/fakesecupay.token -client-out /run/fakesecupay.client
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
	systemctl daemon-reload
	systemctl enable --now till-gadget.service printersim.service fakesecupay.service
	wait_for 20 lp_present || fail "no /dev/usb/lp0 after plugging the gadget"
	wait_for 20 test -s /run/fakesecupay.token || fail "fake secupay did not start"
	ls -l /dev/usb/lp0 /dev/g_printer0
	lsusb | grep 04b8:0e15
	note "kernel $(uname -r), $(systemctl --version | head -n1)"
}

# --- the package, as an admin installs and configures it ----------------------------------
s_install() {
	local deb
	deb=$(ls "$S"/dist/ecrd_*.deb | grep -v '+next' | head -n1)
	apt-get install -y "$deb" </dev/null
	getent passwd ecrd
	getent group ecrd-pos
	systemctl is-enabled ecrd.socket
	systemctl is-enabled ecrd.service
	systemctl is-active ecrd.socket
	test -S "$SOCK"
	stat -c '%a %U:%G %n' /run/ecrd "$SOCK"
	[ "$(stat -c %a:%G "$SOCK")" = 660:ecrd-pos ] || fail "socket is $(stat -c %a:%G "$SOCK")"
	dpkg-query -W -f='${Conffiles}\n' ecrd | grep -q /etc/ecrd/ecrd.env || fail "ecrd.env is not a conffile"
	local want got
	want=$(dpkg-query -W -f='${Version}' ecrd)
	got=$(ecrd version)
	[ "$got" = "ecrd $want" ] || fail "ecrd version says '$got', package is $want"
	ecrd serve -h 2>&1 | grep -q ECRD_PRINTER || fail "serve -h lacks ECRD_PRINTER"
	zcat /usr/share/man/man1/ecrd.1.gz | grep -q ECRD_TOKEN_FILE || fail "man page lacks ECRD_TOKEN_FILE"
	grep -q '^License: CC-BY-4.0' /usr/share/doc/ecrd/copyright || fail "copyright lacks the printer data's CC BY 4.0"
	# The users (sysusers.d) as the postinst made them by hand before; /etc/ecrd (tmpfiles.d).
	[ "$(getent passwd ecrd | cut -d: -f5-7)" = "ecrd till daemon:/var/lib/ecrd:/usr/sbin/nologin" ] || fail "ecrd user: $(getent passwd ecrd)"
	[ "$(id -gn ecrd)" = ecrd ] || fail "ecrd's group is $(id -gn ecrd)"
	[ "$(stat -c %a:%U /etc/ecrd)" = 755:root ] || fail "/etc/ecrd is $(stat -c %a:%U /etc/ecrd)"
	# The udev rule: the printer gadget's USB device (a printer-class interface) is lp's, 0660.
	udevadm settle || true
	local node
	node=$(lsusb -d 04b8:0e15 | awk '{ sub(":", "", $4); print "/dev/bus/usb/" $2 "/" $4; exit }')
	stat -c '%a %U:%G %n' "$node"
	[ "$(stat -c %a:%G "$node")" = 660:lp ] || fail "printer's USB node $node is $(stat -c %a:%G "$node"), not 660:lp"
	# Idempotent: a second install (reinstall) keeps users, groups and the enabled units.
	local ids
	ids=$(id ecrd; getent group ecrd ecrd-pos)
	apt-get install -y --reinstall "$deb" </dev/null
	[ "$(id ecrd; getent group ecrd ecrd-pos)" = "$ids" ] || fail "reinstall changed the users: $(id ecrd; getent group ecrd ecrd-pos)"
	systemctl is-enabled ecrd.socket
	note "$want"
}

s_configure() {
	# As the README tells an admin: the token, the printer, the POS user in ecrd-pos.
	install -m 0600 /run/fakesecupay.token /etc/ecrd/token
	set_env ECRD_SECUPAY_URL "$FAKE"
	set_env ECRD_PRINTER lp:/dev/usb/lp0
	set_env ECRD_PRINT_WAIT 5s
	set_env ECRD_PRINTER_POLL 1s
	id pos >/dev/null 2>&1 || useradd -m -s /bin/bash pos
	usermod -aG ecrd-pos pos
	id other >/dev/null 2>&1 || useradd -m -s /bin/bash other
	restart_ecrd
	# Fault 1: the service starting must not take /run/ecrd or the socket from the POS.
	stat -c '%a %U:%G %n' /run/ecrd "$SOCK"
	[ "$(stat -c %a /run/ecrd)" = 755 ] || fail "/run/ecrd is $(stat -c %a:%U:%G /run/ecrd) after the service started"
	[ "$(stat -c %a:%U:%G "$SOCK")" = 660:ecrd:ecrd-pos ] || fail "socket is $(stat -c %a:%U:%G "$SOCK") after the service started"
	pos_curl http://ecrd/healthz | grep -q '"status":"ok"' || fail "POS user cannot reach the daemon"
	if runuser -u other -- curl -sS --max-time 5 --unix-socket "$SOCK" http://ecrd/healthz 2>/dev/null; then
		fail "a user outside ecrd-pos reached the daemon"
	fi
	# Fault 2: the token came as a credential; show how this systemd presents it.
	local cred=/run/credentials/ecrd.service/token
	note "credential $(stat -c %a "$cred")$(getfacl -p "$cred" 2>/dev/null | grep -q '^user:ecrd' && echo +ACL)"
	getfacl -p "$cred" 2>/dev/null || true
	runuser -u pos -- ecrd status
}

