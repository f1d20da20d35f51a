# The host side of the till test bed shared by test-till.sh and power-cuts.sh (sourced, not
# run; kept apart from lib.sh, whose content keys the cached images): building what goes into
# the guest, choosing KVM or TCG, preparing a run's disk and share, booting it, and reading the
# guest's PASS/FAIL lines. The caller sets top (the repository) and cache (.cache/till), and
# till_arch, the guest's Debian architecture: amd64 (the default) or arm64, an emulated ARM
# till (qemu-system-aarch64, its own kernel, always TCG). A function's REL is the name of an
# image in $cache: the release for amd64 (bookworm), RELEASE-ARCH for another (bookworm-arm64).
till_arch=${till_arch:-amd64}

# till_guest_bin: where the test bed's own programs for till_arch are built (cgo-free, so any
# architecture is a plain cross-build).
till_guest_bin() {
	if [ "$till_arch" = amd64 ]; then echo "$cache/bin"; else echo "$cache/bin-$till_arch"; fi
}

# till_build_guest_parts: the .deb of till_arch (path in $deb; another architecture's
# cross-built, as make deb ARCH=arm64 builds it) and the test bed's own programs in
# till_guest_bin, built from this tree.
till_build_guest_parts() {
	local version bin p
	version=$(scripts/version)
	echo "till: building ecrd $version for $till_arch"
	deb=$(DEB_HOST_ARCH=$till_arch scripts/build-deb.sh "$version" dist) || return 1
	bin=$(till_guest_bin)
	mkdir -p "$bin"
	for p in printersim fakesecupay posload; do
		CGO_ENABLED=0 GOARCH=$(till_goarch) go build -trimpath -o "$bin/$p" "./scripts/till/$p" || return 1
	done
}

# till_goarch: Go's name for till_arch.
till_goarch() {
	case "$till_arch" in
	armhf) echo arm ;;
	*) echo "$till_arch" ;;
	esac
}

# kvm_works KERNEL: /dev/kvm can be opened yet still not run a guest (nested virtualisation
# that hangs without a word): boot the kernel with KVM for a few seconds and look for its
# first console line before trusting it.
kvm_works() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	local out
	out=$(timeout 20 qemu-system-x86_64 -accel kvm -m 256 -display none -monitor none -serial stdio \
		-kernel "$1" -append "console=ttyS0 panic=-1" -no-reboot -nic none 2>/dev/null | head -c 4096)
	case "$out" in *"Linux version"*) return 0 ;; esac
	return 1
}

# till_accel REL: sets accel once (TILL_ACCEL, else KVM if it really runs REL's kernel, else TCG).
# An arm64 guest on this amd64 machine is TCG always; pauth-impdef: QEMU's own pointer
# authentication, far cheaper to emulate than the architected QARMA the max CPU has otherwise.
till_accel() {
	[ -n "${accel:-}" ] && return 0
	accel=${TILL_ACCEL:-}
	if [ -z "$accel" ] && [ "$till_arch" = arm64 ]; then
		accel="-accel tcg -cpu max,pauth-impdef=on"
	elif [ -z "$accel" ]; then
		if kvm_works "$cache/$1/vmlinuz"; then accel="-accel kvm -cpu host"; else accel="-accel tcg"; fi
	fi
	echo "till: qemu $accel"
}

# till_prepare REL DIR: a fresh run directory: a copy of REL's image as the till's disk, and
# the share the guest mounts (the guest scripts, the packages in dist/, the test bed's
# programs in bin/, results/ for what the guest reports).
till_prepare() {
	local rel=$1 dir=$2
	rm -rf "$dir"
	mkdir -p "$dir/share/dist" "$dir/share/bin" "$dir/share/results"
	cp -r scripts/till/guest "$dir/share/guest"
	cp "$deb" "$dir/share/dist/"
	cp "$(till_guest_bin)/printersim" "$(till_guest_bin)/fakesecupay" "$(till_guest_bin)/posload" "$dir/share/bin/"
	cp --sparse=always "$cache/$rel/root.img" "$dir/disk.img"
}

# boot REL DIR PHASE: boot the disk once, the guest running PHASE of the suite named in
# DIR/share/suite (guest/runner.sh); returns when the guest powers off, or kills QEMU when
# the guest asks for a power cut (it touches the share's killme), or at $boot_timeout
# (status 1). cut_after holds the seconds from start to the cut, or is empty.
boot() {
	local rel=$1 dir=$2 phase=$3 qpid t0 rc=0 qemu machine console
	# The virtio disk and 9p share are PCI devices on both machines.
	case "$till_arch" in
	arm64) qemu=qemu-system-aarch64 machine=virt console=ttyAMA0 ;;
	*) qemu=qemu-system-x86_64 machine=q35 console=ttyS0 ;;
	esac
	echo "$phase" >"$dir/share/phase"
	rm -f "$dir/share/killme"
	cut_after=
	t0=$(date +%s)
	# shellcheck disable=SC2086
	"$qemu" $accel -machine "$machine" -m 2048 -smp 2 -no-reboot \
		-display none -monitor none -serial "file:$dir/console-$phase.log" \
		-kernel "$cache/$rel/vmlinuz" -initrd "$cache/$rel/initrd.img" \
		-append "root=/dev/vda rw console=$console panic=-1 systemd.show_status=auto" \
		-drive "file=$dir/disk.img,format=raw,if=virtio" \
		-virtfs "local,path=$dir/share,mount_tag=host,security_model=none,id=host" \
		-nic none >"$dir/qemu-$phase.log" 2>&1 &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		if [ -e "$dir/share/killme" ]; then
			kill -KILL "$qpid"
			cut_after=$(($(date +%s) - t0))
			echo "till: [$rel] power cut (QEMU killed) after ${cut_after}s"
			break
		fi
		if [ $(($(date +%s) - t0)) -gt "$boot_timeout" ]; then
			kill -KILL "$qpid"
			echo "till: [$rel] $phase timed out after ${boot_timeout}s; console: $dir/console-$phase.log"
			rc=1
			break
		fi
		sleep 1
	done
	wait "$qpid" 2>/dev/null
	echo "till: [$rel] boot $phase: $(($(date +%s) - t0))s"
	return $rc
}

# boot_again_after_panic REL DIR PHASE [AGAIN]: boot, as boot does; but when the guest's
# kernel panicked, boot the disk again, twice at most, and count it in panics. Under TCG it has
# oopsed at start-up, about one boot in 80 (int3 in code the kernel was patching, before ecrd
# or the suite ran), and once in the middle of a power-cut boot (a double fault). A panic
# before the suite's runner started is always booted again; one after it only if the function
# AGAIN, given DIR and PHASE, says the phase may run again, and puts back what the broken run
# reported. To the disk that boot was one more power cut.
panics=0
boot_again_after_panic() {
	local rel=$1 dir=$2 phase=$3 again=${4:-} tries=0 when
	while :; do
		boot "$rel" "$dir" "$phase" || return 1
		when=
		if [ -z "$cut_after" ] && [ "$tries" -lt 2 ] && grep -q 'Kernel panic' "$dir/console-$phase.log"; then
			if [ ! -e "$dir/share/results/runner-$phase.log" ]; then
				when="before the suite started"
			elif [ -n "$again" ] && "$again" "$dir" "$phase"; then
				when="while the suite ran, before it did what cannot be done twice"
				mv "$dir/share/results/runner-$phase.log" "$dir/share/results/runner-$phase.panic-$((tries + 1)).log"
			fi
		fi
		[ -n "$when" ] || return 0
		tries=$((tries + 1))
		panics=$((panics + 1))
		mv "$dir/console-$phase.log" "$dir/console-$phase.panic-$tries.log"
		echo "till: [$rel] $phase: the guest's kernel panicked $when (see console-$phase.panic-$tries.log); booting the disk again"
	done
}

# till_report REL FILE: prints the guest's "PASS|FAIL name seconds detail" lines of FILE and
# adds them up in passed and failed.
till_report() {
	local rel=$1 verdict name secs detail
	while read -r verdict name secs detail; do
		printf '%s [%s] %-24s %6ss  %s\n' "$verdict" "$rel" "$name" "$secs" "$detail"
		if [ "$verdict" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	done <"$2"
}
