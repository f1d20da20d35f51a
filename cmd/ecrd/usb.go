//go:build cgo

package main

import (
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/printer/usb"
)

// usbLinked says this build has the usb: printer transport.
const usbLinked = true

// The usb: printer transport is libusb's, through cgo: the one part of ecrd that needs cgo,
// linked here and nowhere else (deps_test.go at the module root). A CGO_ENABLED=0 build
// leaves this file out (usb_nocgo.go), and printer.Open then answers a usb: URI with the way
// to the same printer through lp:, the kernel's usblp device.
func init() { printer.RegisterTransport("usb", usb.Dialer) }
