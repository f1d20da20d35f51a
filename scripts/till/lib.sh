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

# till_host_deps installs what the test bed needs on the host (CI starts bare).
till_host_deps() {
	local missing=""
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
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
