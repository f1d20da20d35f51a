#!/usr/bin/env bash
# deb-repro.sh — prove the package reproducible: build the .deb of HEAD (for DEB_HOST_ARCH, as
# make deb-repro ARCH=arm64 asks; this machine's when unset) twice, each from a clean
# clone of the commit in a directory of its own (different paths, different lengths), the
# second with an empty Go build cache and another TMPDIR, and compare the two with cmp. On a
# difference it says which files of the package differ. Uncommitted changes are not in either
# build: commit first. A couple of minutes (the second build compiles everything).
set -euo pipefail
cd "$(dirname "$0")/.."
head=$(git rev-parse HEAD)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

build() { # build DIR [ENV...]: clone HEAD into DIR, build its .deb, print the .deb's path
	local dir=$1
	shift
	git clone -q --no-checkout . "$dir"
	git -C "$dir" checkout -q --detach "$head"
	(cd "$dir" && env "$@" scripts/build-deb.sh "$(scripts/version)" dist)
}

t0=$(date +%s)
a=$work/a/ecrd
b=$work/second-build/somewhere/else/ecrd
mkdir -p "$work/tmp" "$work/gocache"
deb_a=$a/$(build "$a")
deb_b=$b/$(build "$b" GOCACHE="$work/gocache" TMPDIR="$work/tmp")
echo "deb-repro: $head, built in $a and in $b ($(($(date +%s) - t0))s)"
if cmp "$deb_a" "$deb_b"; then
	echo "deb-repro: identical: $(sha256sum <"$deb_a" | cut -d' ' -f1)  $(basename "$deb_a") ($(stat -c %s "$deb_a") bytes)"
	exit 0
fi
echo "deb-repro: the two builds differ" >&2
for x in a b; do
	deb=deb_$x
	mkdir -p "$work/x$x/DEBIAN"
	dpkg-deb -x "${!deb}" "$work/x$x"
	dpkg-deb -e "${!deb}" "$work/x$x/DEBIAN"
	dpkg-deb -c "${!deb}" >"$work/list$x"
done
diff "$work/lista" "$work/listb" >&2 || true
(cd "$work/xa" && find . -type f | sort) | while read -r f; do
	cmp -s "$work/xa/$f" "$work/xb/$f" || echo "deb-repro: differs: $f" >&2
done
exit 1
