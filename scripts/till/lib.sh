# Shared helpers of the till test bed (sourced, not run).

# till_mirror prints the Debian mirror this machine's apt uses (first "deb" source serving
# the main archive), so debootstrap fetches from the same place apt does and no host name is
# written into the repository.
till_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822: a stanza whose Suites has a plain release (not -security) and Components main.
		uri=$(awk '
			BEGIN { RS=""; FS="\n" }
			{
				u=""; s=""; c=""; t=""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { u=$i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
					if ($i ~ /^Suites:/) s=$i
					if ($i ~ /^Components:/) c=$i
					if ($i ~ /^Types:/) t=$i
				}
				if (t ~ /[ \t]deb([ \t]|$)/ && c ~ /[ \t]main/ && s !~ /-security/ && u != "") { print u; exit }
			}' "$f")
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(awk '$1 == "deb" && $0 !~ /-security/ && / main/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	echo "till: no Debian mirror found in /etc/apt/sources.list*" >&2
	return 1
}

# till_host_deps [ARCH] installs what the test bed needs on the host (CI starts bare): for the
# guest architecture ARCH (amd64 by default; arm64: QEMU's arm system emulator, and
# qemu-user-static, which runs the image's arm64 package scripts while it is built).
till_host_deps() {
	local missing=""
	case "${1:-amd64}" in
	arm64)
		command -v qemu-system-aarch64 >/dev/null 2>&1 || missing="$missing qemu-system-arm"
		command -v qemu-aarch64-static >/dev/null 2>&1 || missing="$missing qemu-user-static"
		;;
	*) command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86" ;;
	esac
	command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
	command -v mkfs.ext4 >/dev/null 2>&1 || missing="$missing e2fsprogs"
	command -v lintian >/dev/null 2>&1 || missing="$missing lintian"
	command -v dpkg-deb >/dev/null 2>&1 || missing="$missing dpkg"
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "till: need root to install:$missing" >&2
		return 1
	fi
	echo "till: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# till_foreign_exec ARCH: this machine runs ARCH's programs under qemu-user-static through
# binfmt_misc until the calling script exits, so that debootstrap can run ARCH's package
# scripts in the chroot. An existing registration (binfmt-support, systemd-binfmt) is used as
# it is; else one of Debian's qemu-user-static is registered under a name of this process and
# removed on exit, so the machine runs foreign programs as before once the image is built.
# Flag F (in Debian's entry): the kernel opens the static interpreter at registration, so it
# needs no copy inside the chroot.
till_foreign_exec() {
	local qarch b=/proc/sys/fs/binfmt_misc name
	case "$1" in
	arm64) qarch=aarch64 ;;
	armhf) qarch=arm ;;
	*) echo "till: no qemu-user for $1" >&2; return 1 ;;
	esac
	mountpoint -q "$b" || mount -t binfmt_misc binfmt_misc "$b" || { echo "till: binfmt_misc cannot be mounted" >&2; return 1; }
	if [ -e "$b/qemu-$qarch" ] && head -n1 "$b/qemu-$qarch" | grep -q enabled; then
		return 0
	fi
	name=till-$qarch-$$
	sed "s/^:qemu-$qarch:/:$name:/" "/usr/lib/binfmt.d/qemu-$qarch.conf" >"$b/register" || return 1
	# shellcheck disable=SC2064
	trap "echo -1 >$b/$name" EXIT
	echo "till: $qarch programs run under qemu-user-static ($b/$name) while the image is built"
}
