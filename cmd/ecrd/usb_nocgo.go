//go:build !cgo

package main

// usbLinked says this build has the usb: printer transport: a CGO_ENABLED=0 build has no
// libusb (usb.go), and printer.Open refuses usb: URIs, naming lp: as the way to the printer.
const usbLinked = false
