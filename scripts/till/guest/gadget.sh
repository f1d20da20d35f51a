#!/bin/sh
# gadget.sh setup|plug|unplug — the till's "real USB printer": a USB printer-class gadget
# (usb_f_printer through configfs/libcomposite) on the dummy_hcd UDC, so the guest's own USB
# host controller enumerates an Epson-IDed printer: usblp gives /dev/usb/lp0, libusb sees
# 04b8:0e15, and the gadget side is /dev/g_printer0 (printersim). plug/unplug bind and unbind
# the UDC: the host side sees a real disconnect and reconnect.
set -eu
G=/sys/kernel/config/usb_gadget/till
case "${1:-setup}" in
setup)
	modprobe -a libcomposite dummy_hcd usb_f_printer usblp
	mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
	if [ ! -d "$G" ]; then
		mkdir "$G"
		echo 0x04b8 >"$G/idVendor"
		echo 0x0e15 >"$G/idProduct"
		echo 0x0200 >"$G/bcdUSB"
		mkdir "$G/strings/0x409"
		echo EPSON >"$G/strings/0x409/manufacturer"
		echo "TM-T20II (till test bed)" >"$G/strings/0x409/product"
		echo TILL0001 >"$G/strings/0x409/serialnumber"
		mkdir -p "$G/configs/c.1/strings/0x409"
		echo printer >"$G/configs/c.1/strings/0x409/configuration"
		echo 100 >"$G/configs/c.1/MaxPower"
		mkdir "$G/functions/printer.usb0"
		echo "MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;CLS:PRINTER;" >"$G/functions/printer.usb0/pnp_string"
		# q_len stays at its default: with q_len=2, Debian 12's dummy_hcd hit list corruption in
		# dummy_timer (kernel panic) on an unplug during a transfer.
		ln -s "$G/functions/printer.usb0" "$G/configs/c.1/"
	fi
	exec "$0" plug
	;;
plug)
	[ -n "$(cat "$G/UDC")" ] || ls /sys/class/udc | head -n1 >"$G/UDC"
	rm -f /run/printersim/detach
	;;
unplug)
	# The printer simulator lets go of /dev/g_printer0 first: a read racing the unbind
	# corrupts usb_f_printer's request lists (kernel panic in Debian 12's 6.1).
	mkdir -p /run/printersim
	touch /run/printersim/detach
	if systemctl -q is-active printersim.service 2>/dev/null; then
		i=0
		while [ ! -e /run/printersim/detached ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	fi
	[ -z "$(cat "$G/UDC")" ] || echo "" >"$G/UDC"
	;;
*)
	echo "usage: $0 setup|plug|unplug" >&2
	exit 2
	;;
esac
