#!/usr/bin/env bash
# build-deb.sh VERSION OUTDIR — build dist/ecrd_VERSION_ARCH.deb with dpkg-deb from the tree in
# packaging/deb (maintainer scripts, control) and deploy/systemd (units, udev rule, env file).
# dpkg-deb rather than nfpm or debhelper: it ships with every Debian system, so building the
# package needs nothing beyond what builds ecrd, and every file of the package is in view here.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?version}
out=${2:-dist}
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-ecrd maintainers <maintainers@users.noreply.ecrd-pos.invalid>}
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
umask 022

d() { install -d -m 0755 "$root/$1"; }
f() { install -D -m "$1" "$2" "$root/$3"; }

# How the daemon is built (cgo, PIE, RELRO, packed relocations, no HTTP/2) is scripts/build-ecrd's.
scripts/build-ecrd "$root/usr/bin/ecrd" "$version"
chmod 0755 "$root/usr/bin/ecrd"

f 0644 deploy/systemd/ecrd.service usr/lib/systemd/system/ecrd.service
f 0644 deploy/systemd/ecrd.socket usr/lib/systemd/system/ecrd.socket
f 0644 deploy/systemd/60-ecrd-printer.rules usr/lib/udev/rules.d/60-ecrd-printer.rules
f 0644 deploy/systemd/ecrd-modules.conf usr/lib/modules-load.d/ecrd.conf
f 0644 deploy/systemd/ecrd.env.example etc/ecrd/ecrd.env
f 0644 README.md usr/share/doc/ecrd/README.md
gzip -9n "$root/usr/share/doc/ecrd/README.md"
# The pages the README points to, under the same relative path (docs/), compressed like it.
for doc in docs/*.md docs/openapi.yaml; do
	f 0644 "$doc" "usr/share/doc/ecrd/$doc"
	gzip -9n "$root/usr/share/doc/ecrd/$doc"
done

# The man page is the program's own help, so it lists every ECRD_ variable the binary knows.
date=$(git log -1 --format=%cd --date=format:%Y-%m-%d 2>/dev/null || date -u +%Y-%m-%d)
{
	printf '.TH ECRD 8 "%s" "ecrd %s" "System Administration"\n' "$date" "$version"
	printf '.SH NAME\necrd \\- secupay cash capture and ESC/POS receipt printing on a till\n'
	printf '.SH DESCRIPTION\nSettings live in\n.I /etc/ecrd/ecrd.env\n(one ECRD_ variable per flag); the token in\n.IR /etc/ecrd/token ,\nhanded to the service as a systemd credential.\n'
	printf '.SH USAGE\n.nf\n'
	"$root/usr/bin/ecrd" help | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
	printf '.fi\n.SH FILES\n.TP\n/etc/ecrd/ecrd.env\nsettings\n.TP\n/etc/ecrd/token\nthe secupay bearer token (0600 root)\n.TP\n/etc/ecrd/http-token\nthe bearer token of the browser listener, made at install (0640 root:ecrd-pos; \\fBecrd pair\\fR prints it)\n.TP\n/var/lib/ecrd\njournal and print spool\n.TP\n/run/ecrd/ecrd.sock\nthe local API (group ecrd-pos)\n'
	printf '.SH SEE ALSO\n.nf\n/usr/share/doc/ecrd/README.md.gz\n/usr/share/doc/ecrd/docs/install.md.gz\n/usr/share/doc/ecrd/docs/operations.md.gz\n.fi\n'
} >"$root/ecrd.8"
install -D -m 0644 "$root/ecrd.8" "$root/usr/share/man/man8/ecrd.8"
rm "$root/ecrd.8"
gzip -9n "$root/usr/share/man/man8/ecrd.8"

cat >"$root/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ecrd
Source: https://github.com/ecrd-pos/ecrd

Files: *
Copyright: 2026 the ecrd authors
License: proprietary
 No licence file is part of the ecrd repository; all rights reserved by its authors.
 The Go modules linked into /usr/bin/ecrd carry their own licences (go version -m).
COPY
install -D -m 0644 "$root/copyright" "$root/usr/share/doc/ecrd/copyright"
rm "$root/copyright"
{
	printf 'ecrd (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n' "$version" "$(git rev-parse --short HEAD 2>/dev/null || echo source)"
	printf ' -- %s  %s\n' "$maintainer" "$(git log -1 --format=%cD 2>/dev/null || date -uR)"
} | gzip -9n >"$root/usr/share/doc/ecrd/changelog.gz"
chmod 0644 "$root/usr/share/doc/ecrd/changelog.gz"

d DEBIAN
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@SIZE@/$size/" \
	packaging/deb/control.in >"$root/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/ecrd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
