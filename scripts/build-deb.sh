#!/usr/bin/env bash
# build-deb.sh VERSION OUTDIR — build dist/ecrd_VERSION_ARCH.deb with dpkg-deb from the tree in
# packaging/deb (maintainer scripts, control) and deploy/systemd (units, udev rule, env file).
# ARCH is DEB_HOST_ARCH, this machine's when unset; arm64 and armhf are cross-built
# (scripts/build-ecrd; make deb ARCH=arm64 installs the cross compiler first).
# dpkg-deb rather than nfpm or debhelper: it ships with every Debian system, so building the
# package needs nothing beyond what builds ecrd (and go-md2man for the man page, installed here
# when missing), and every file of the package is in view here.
#
# Reproducible: two builds of one commit are the same bytes (make deb-repro checks it). Every
# date is the commit's (SOURCE_DATE_EPOCH), every file's mtime is set to it and its owner to
# root, dpkg-deb sorts the entries and compresses with one thread, gzip stores no name or
# time, and the binary carries no build path or build ID (scripts/build-ecrd).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?version}
out=${2:-dist}
arch=${DEB_HOST_ARCH:-$(dpkg --print-architecture)}
export DEB_HOST_ARCH=$arch
maintainer=${DEB_MAINTAINER:-ecrd maintainers <maintainers@users.noreply.ecrd-pos.invalid>}
GO=${GO:-go}
export GO
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) || {
		echo "build-deb: not a git checkout and no SOURCE_DATE_EPOCH: the package's dates are now's" >&2
		SOURCE_DATE_EPOCH=$(date +%s)
	}
fi
export SOURCE_DATE_EPOCH
# Sorting and the tools' messages as on any other machine.
export LC_ALL=C TZ=UTC
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
umask 022

# go-md2man makes the man page from docs/ecrd.1.md; a bare machine or a fresh CI image lacks it.
if ! command -v go-md2man >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		echo "build-deb: need go-md2man for the man page (sudo apt-get install go-md2man)" >&2
		exit 1
	fi
	echo "build-deb: installing go-md2man" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends go-md2man >/dev/null 2>&1 || {
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends go-md2man >/dev/null
	}
fi

d() { install -d -m 0755 "$root/$1"; }
f() { install -D -m "$1" "$2" "$root/$3"; }

# How the daemon is built (cgo, PIE, RELRO, packed relocations, no HTTP/2) is scripts/build-ecrd's.
head=$(git rev-parse HEAD 2>/dev/null) || head=""
scripts/build-ecrd "$root/usr/bin/ecrd" "$version"
chmod 0755 "$root/usr/bin/ecrd"
# The binary must be for the package's architecture: its ELF header's e_machine.
machine=$(od -An -tu2 -j18 -N2 "$root/usr/bin/ecrd" | tr -d ' ')
want=$(case "$arch" in amd64) echo 62 ;; arm64) echo 183 ;; armhf) echo 40 ;; *) echo "$machine" ;; esac)
[ "$machine" = "$want" ] || { echo "build-deb: usr/bin/ecrd is ELF machine $machine, not $arch's ($want)" >&2; exit 1; }
# The commit must reach the binary (ecrd_build_info{revision=...}, go version -m): fail a
# package from a checkout whose binary does not name its commit.
if [ -n "$head" ]; then
	rev=$("$GO" version -m "$root/usr/bin/ecrd" | awk '$1 == "build" && $2 ~ /^vcs\.revision=/ { sub(/^vcs\.revision=/, "", $2); print $2 }')
	if [ "$rev" != "$head" ]; then
		echo "build-deb: the binary names revision '$rev', the checkout is $head" >&2
		exit 1
	fi
fi

f 0644 deploy/systemd/ecrd.service usr/lib/systemd/system/ecrd.service
f 0644 deploy/systemd/ecrd.socket usr/lib/systemd/system/ecrd.socket
f 0644 deploy/systemd/60-ecrd-printer.rules usr/lib/udev/rules.d/60-ecrd-printer.rules
f 0644 deploy/systemd/ecrd-modules.conf usr/lib/modules-load.d/ecrd.conf
f 0644 deploy/systemd/ecrd-sysusers.conf usr/lib/sysusers.d/ecrd.conf
f 0644 deploy/systemd/ecrd-tmpfiles.conf usr/lib/tmpfiles.d/ecrd.conf
f 0644 deploy/systemd/ecrd.env.example etc/ecrd/ecrd.env
f 0644 README.md usr/share/doc/ecrd/README.md
gzip -9n "$root/usr/share/doc/ecrd/README.md"
# The pages the README points to, under the same relative path (docs/), compressed like it.
# Not the man page's source: it is installed as the man page.
for doc in docs/*.md docs/openapi.yaml; do
	[ "$doc" = docs/ecrd.1.md ] && continue
	f 0644 "$doc" "usr/share/doc/ecrd/$doc"
	gzip -9n "$root/usr/share/doc/ecrd/$doc"
done
# A fleet's starting point (docs/operations.md, "Alerts"): the Prometheus alerting rules with
# their unit tests, and the Grafana dashboard; compressed like the other docs (zcat them).
for ex in deploy/prometheus/ecrd-alerts.yml deploy/prometheus/ecrd-alerts.test.yml deploy/grafana/ecrd-dashboard.json; do
	f 0644 "$ex" "usr/share/doc/ecrd/examples/${ex##*/}"
	gzip -9n "$root/usr/share/doc/ecrd/examples/${ex##*/}"
done

# The man page, ecrd(1), from docs/ecrd.1.md (Markdown for go-md2man; cmd/ecrd's
# TestManPageListsEveryServeFlag keeps its OPTIONS and serve's flags the same). The title line
# (.TH) is made here, with the commit's date and the version; no hyphenation, ragged right, so
# that options and paths are never split.
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
install -d -m 0755 "$root/usr/share/man/man1"
{
	printf 'ECRD 1 "%s" "ecrd %s" "User Commands"\n===\n\n' "$date" "$version"
	cat docs/ecrd.1.md
} | go-md2man | sed -e '/^\.TH /a .nh\n.ad l' >"$root/usr/share/man/man1/ecrd.1"
grep -q '^\.SH "*OPTIONS' "$root/usr/share/man/man1/ecrd.1" || { echo "build-deb: go-md2man made no OPTIONS section" >&2; exit 1; }
chmod 0644 "$root/usr/share/man/man1/ecrd.1"
gzip -9n "$root/usr/share/man/man1/ecrd.1"

# The copyright file, made from the binary: every Go module linked into it with its licence,
# the printer data's CC BY 4.0 attribution, ecrd's own terms (scripts/deb-copyright).
install -d -m 0755 "$root/usr/share/doc/ecrd"
scripts/deb-copyright "$root/usr/bin/ecrd" >"$root/usr/share/doc/ecrd/copyright"
chmod 0644 "$root/usr/share/doc/ecrd/copyright"
{
	printf 'ecrd (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n' "$version" "$(git rev-parse --short HEAD 2>/dev/null || echo source)"
	printf ' -- %s  %s\n' "$maintainer" "$(git log -1 --format=%cD 2>/dev/null || date -uR)"
} | gzip -9n >"$root/usr/share/doc/ecrd/changelog.gz"
chmod 0644 "$root/usr/share/doc/ecrd/changelog.gz"

d DEBIAN
# Installed-Size as dpkg-gencontrol counts it (KiB per file, rounded up; 1 per directory), not
# du's, which depends on the file system the build ran on.
size=$(find "$root" -path "$root/DEBIAN" -prune -o -type f -printf '%s\n' -o -printf '1024\n' |
	awk '{ n += int(($1 + 1023) / 1024) } END { print n }')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@SIZE@/$size/" \
	packaging/deb/control.in >"$root/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Every file and directory dated the commit; owners root:root (--root-owner-group); dpkg-deb
# sorts the entries and dates the ar members from SOURCE_DATE_EPOCH. One compression thread:
# xz's single- and multi-threaded encoders write different bytes, and which one dpkg-deb would
# pick depends on the machine.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$out/ecrd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --threads-max=1 --build "$root" "$deb" >/dev/null
echo "$deb"
