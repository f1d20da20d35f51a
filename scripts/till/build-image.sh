#!/usr/bin/env bash
# build-image.sh RELEASE OUTDIR [ARCH] — a bootable Debian root file system for the till test
# bed: OUTDIR/root.img (raw ext4, no partition table), OUTDIR/vmlinuz, OUTDIR/initrd.img.
# Built with debootstrap from the mirror this machine's apt uses; cached in OUTDIR, keyed by
# this script's content and ARCH, so a rerun reuses it and a changed recipe rebuilds it.
# Nothing of ecrd is in the image: the guest installs the .deb itself, as a till would.
# ARCH is a Debian architecture, this machine's (amd64) by default; arm64 is built here too:
# its packages' scripts run under qemu-user (till_foreign_exec in lib.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rel=${1:?release}
out=$(realpath -m "${2:?outdir}")
arch=${3:-$(dpkg --print-architecture)}
key=$( (cat "$0" "$here/lib.sh"; echo "$arch") | sha256sum | cut -c1-16)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$key" ] && [ -f "$out/root.img" ]; then
	echo "till: $rel image cached in $out"
	exit 0
fi
mirror=$(till_mirror)
host_arch=$(dpkg --print-architecture)
# A build killed half-way leaves debootstrap's mounts (proc, sys) in the root: off first, so
# that rm stays in the image's own files.
findmnt -rn -o TARGET | { grep "^$out/" || true; } | sort -r | xargs -r umount -l
rm -rf --one-file-system "$out"
mkdir -p "$out"
root="$out/rootfs"
echo "till: debootstrap $rel $arch from $mirror (a few minutes$([ "$arch" = "$host_arch" ] || echo "; more under qemu-user"))"
t0=$(date +%s)
# What a till needs besides the .deb's own dependency (libusb-1.0-0, installed by apt from
# the .deb): a kernel with dummy_hcd/usb_f_printer/usblp, systemd with udev, curl for the POS.
# The .deb's Recommends (unifont, the glyphs of characters no code page has) are here too: the
# guest has no network, and apt installs a package's Recommends. sqlite3: the scenarios read
# (and change, for a control) ecrd's state database as a technician would.
pkgs=systemd,systemd-sysv,udev,kmod,linux-image-$arch,initramfs-tools,curl,libusb-1.0-0,usbutils,procps,acl,passwd,unifont,sqlite3
debootstrap_failed() {
	echo "till: debootstrap $rel $arch $mirror failed; last lines of $out/debootstrap.log:" >&2
	tail -n 20 "$out/debootstrap.log" >&2
	exit 1
}
if [ "$arch" = "$host_arch" ]; then
	debootstrap --variant=minbase --include="$pkgs" "$rel" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || debootstrap_failed
else
	# Another architecture: the packages unpacked here (--foreign), then configured in the
	# chroot, their maintainer scripts run by qemu-user-static through binfmt_misc (for the
	# build only). The initrds are made with the modules the till's disk needs (listed below),
	# not with most of them: under qemu-user, the kernel's postinst took over 20 minutes with
	# MODULES=most.
	debootstrap --foreign --arch="$arch" --variant=minbase --include="$pkgs" "$rel" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || debootstrap_failed
	mkdir -p "$root/etc/initramfs-tools/conf.d"
	echo MODULES=list >"$root/etc/initramfs-tools/conf.d/till-modules"
	till_foreign_exec "$arch"
	chroot "$root" /debootstrap/debootstrap --second-stage >>"$out/debootstrap.log" 2>&1 || debootstrap_failed
fi
echo "till: debootstrap took $(($(date +%s) - t0))s"

echo till >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# The runner hook: mount the host's share (9p) and run the scenario script found there.
# All test logic lives in the repository's share, so changing a scenario never rebuilds this.
cat >"$root/etc/systemd/system/till-runner.service" <<'UNIT'
[Unit]
Description=till test bed runner (host share over 9p)
After=local-fs.target systemd-udevd.service
[Service]
Type=simple
ExecStartPre=/sbin/modprobe -a 9p 9pnet_virtio
ExecStartPre=/bin/mkdir -p /mnt/host
ExecStartPre=/bin/mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt/host
ExecStart=/bin/sh /mnt/host/guest/runner.sh
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/till-runner.service "$root/etc/systemd/system/multi-user.target.wants/till-runner.service"
# No login prompts or first-boot questions on the serial console.
# (ttyS0 is a PC's serial port, ttyAMA0 the arm64 virt machine's.)
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyAMA0.service"
ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
# The guest has no network; do not wait for one.
ln -sf /dev/null "$root/etc/systemd/system/systemd-networkd-wait-online.service"
chroot "$root" passwd -d root >/dev/null
rm -f "$root/etc/machine-id"; : >"$root/etc/machine-id"
# The 9p modules must be loadable before the share is mounted; virtio drivers into the initrd
# (crc32c_generic: ext4's checksums, named for an initrd of listed modules only).
printf 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n' >>"$root/etc/initramfs-tools/modules"
chroot "$root" update-initramfs -u -k all >/dev/null 2>&1
cp -L "$root/vmlinuz" "$out/vmlinuz"
cp -L "$root/initrd.img" "$out/initrd.img"
chroot "$root" apt-get clean
mkfs.ext4 -q -F -L tillroot -d "$root" "$out/root.img" 3G
rm -rf "$root"
echo "$key" >"$out/stamp"
echo "till: $rel image ready in $out ($(($(date +%s) - t0))s)"
