#!/usr/bin/env bash
# test-arm.sh — make test-arm: the ARM packages built and their daemon run, on this machine.
# For each architecture of $ARM_ARCHES (default "arm64 armhf"):
#
#  1. scripts/install-cross --run ARCH: the cross compiler, libusb-1.0-0-dev of ARCH (multiarch),
#     qemu-user, dpkg-dev.
#  2. dist/ecrd_VERSION_ARCH.deb cross-built (DEB_HOST_ARCH=ARCH scripts/build-deb.sh, as
#     make deb ARCH=ARCH does), and shown: dpkg-deb -I and -c.
#  3. Checked: its Architecture is ARCH; its Depends is control.in's, the amd64 package's, and
#     satisfies what dpkg-shlibdeps works out from the binary and ARCH's libc6 and libusb; the
#     binary (`file`) is an ELF of ARCH with ARCH's loader.
#  4. The binary of the package run under qemu-user (qemu-aarch64, qemu-arm): `ecrd version`
#     names the package's version, and `ecrd demo` runs the whole flow — the loopback secupay
#     fake, the daemon on a temporary socket, a file printer, one capture and its repeat — and
#     prints what it prints; the capture must be captured once, the repeat replayed, one
#     receipt printed.
#
# The binary's loader and libraries are ARCH's own Debian packages, libc6, libusb-1.0-0 and
# libudev1 installed through multiarch (/lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu),
# the ones a Debian till of ARCH runs it with, so qemu needs no -L. (qemu-aarch64 7.2 with
# -L /usr/aarch64-linux-gnu, the cross compiler's libc, spins in the demo before its first
# system call.) Every qemu run is under a timeout that kills it: qemu-user hands SIGTERM to the
# program it runs, and an emulated program that is stuck never takes it.
#
# Prints one PASS/FAIL line per architecture and ends with "N passed, M failed"; any failure
# fails the run. ARM_DEMO_TIMEOUT (300 s) bounds each qemu run.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
arches=${ARM_ARCHES:-arm64 armhf}
version=${VERSION:-$(scripts/version)}
limit=${ARM_DEMO_TIMEOUT:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want_depends=$(sed -n 's/^Depends: //p' packaging/deb/control.in)

say() { echo "test-arm: [$arch] $*"; }
die() { echo "test-arm: [$arch] FAIL: $*" >&2; exit 1; }

# emulate BIN ARGS...: run an ARCH binary under qemu-user, killed after $limit seconds.
emulate() { timeout -k 10 "$limit" "$qemu" "$@"; }

# check_depends BINARY CONTROL_DEPENDS: every "pkg (>= v)" dpkg-shlibdeps asks for BINARY is in
# CONTROL_DEPENDS with a version at least as high.
check_depends() {
	local bin=$1 have=$2 shl need pkg ver got
	shl=$work/shlibdeps-$arch
	mkdir -p "$shl/debian/ecrd/usr/bin" "$shl/debian/ecrd/DEBIAN"
	printf 'Source: ecrd\n\nPackage: ecrd\nArchitecture: any\n' >"$shl/debian/control"
	cp "$bin" "$shl/debian/ecrd/usr/bin/ecrd"
	need=$(cd "$shl" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O debian/ecrd/usr/bin/ecrd) || die "dpkg-shlibdeps failed"
	need=${need#shlibs:Depends=}
	say "dpkg-shlibdeps: $need"
	while read -r pkg ver; do
		[ -n "$pkg" ] || continue
		got=$(echo "$have" | tr ',' '\n' | sed -n "s/^ *$pkg *(>= *\([^)]*\)).*/\1/p")
		[ -n "$got" ] || die "Depends has no versioned $pkg; dpkg-shlibdeps asks for $pkg (>= $ver)"
		dpkg --compare-versions "$got" ge "$ver" || die "Depends has $pkg (>= $got); dpkg-shlibdeps asks for (>= $ver)"
	done < <(echo "$need" | tr ',' '\n' | sed -n 's/^ *\([^ ]*\) *(>= *\([^)]*\)).*/\1 \2/p')
}

one_arch() {
	local t0 t1 t2 deb bin out
	case "$arch" in
	arm64) qemu=qemu-aarch64 elf="ARM aarch64" loader=/lib/ld-linux-aarch64.so.1 ;;
	armhf) qemu=qemu-arm elf="ARM, EABI5" loader=/lib/ld-linux-armhf.so.3 ;;
	*) die "no ARM architecture: $arch (arm64, armhf)" ;;
	esac
	t0=$(date +%s)
	scripts/install-cross --run "$arch" || die "install-cross failed"
	command -v file >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends file >/dev/null || die "cannot install file"; }

	say "building the package"
	deb=$(DEB_HOST_ARCH=$arch scripts/build-deb.sh "$version" dist) || die "build-deb.sh failed"
	t1=$(date +%s)
	say "built $deb in $((t1 - t0))s"
	echo "\$ dpkg-deb -I $deb"
	dpkg-deb -I "$deb" || die "dpkg-deb -I failed"
	echo "\$ dpkg-deb -c $deb"
	dpkg-deb -c "$deb" || die "dpkg-deb -c failed"
	[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || die "Architecture: $(dpkg-deb -f "$deb" Architecture), not $arch"
	[ "$(dpkg-deb -f "$deb" Depends)" = "$want_depends" ] || die "Depends: $(dpkg-deb -f "$deb" Depends), not control.in's $want_depends"

	dpkg-deb -x "$deb" "$work/root-$arch" || die "dpkg-deb -x failed"
	bin=$work/root-$arch/usr/bin/ecrd
	out=$(file -b "$bin")
	echo "\$ file usr/bin/ecrd"
	echo "$out"
	case "$out" in
	*"$elf"*"interpreter $loader"*) ;;
	*) die "usr/bin/ecrd is not an $elf executable with $loader" ;;
	esac
	check_depends "$bin" "$(dpkg-deb -f "$deb" Depends)"

	echo "\$ $qemu usr/bin/ecrd version"
	out=$(emulate "$bin" version) || die "ecrd version under $qemu failed"
	echo "$out"
	[ "$out" = "ecrd $version" ] || die "ecrd version says '$out', the package is $version"

	echo "\$ $qemu usr/bin/ecrd demo"
	emulate "$bin" demo 2>&1 | tee "$work/demo-$arch.out"
	local rc=${PIPESTATUS[0]}
	t2=$(date +%s)
	[ "$rc" = 0 ] || die "ecrd demo under $qemu exited $rc (124 or 137: killed after ${limit}s)"
	for want in '"outcome": "captured"' '"replayed": true' 'secupay saw 1 start/cash call(s)' '(1 receipt(s))' '--- cut ---'; do
		grep -qF -- "$want" "$work/demo-$arch.out" || die "the demo's output has no '$want'"
	done
	say "demo under $qemu in $((t2 - t1))s; $((t2 - t0))s in all"
}

passed=0
failed=0
summary=""
for arch in $arches; do
	t=$(date +%s)
	if (one_arch); then
		echo "PASS [$arch] $(dpkg-deb -f "dist/ecrd_${version}_$arch.deb" Package Architecture Depends | tr '\n' ' ')"
		passed=$((passed + 1))
	else
		echo "FAIL [$arch]"
		failed=$((failed + 1))
	fi
	summary="$summary $arch:$(($(date +%s) - t))s"
done
echo "test-arm: wall time:$summary"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
