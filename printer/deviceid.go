package printer

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// DeviceID is a printer's IEEE 1284 Device ID, the "MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;…"
// string a USB printer (and usblp) reports about itself. Keys are matched without regard to
// case, in their long and short forms (MFG/MANUFACTURER, MDL/MODEL, CMD/COMMAND SET, CLS/CLASS,
// DES/DESCRIPTION, SN/SERN/SERIALNUMBER).
type DeviceID struct {
	Manufacturer string   `json:"manufacturer,omitempty"`
	Model        string   `json:"model,omitempty"`
	Commands     []string `json:"commands,omitempty"` // "ESC/POS", "STAR", "ESCPL2", …
	Class        string   `json:"class,omitempty"`
	Description  string   `json:"description,omitempty"`
	Serial       string   `json:"serial,omitempty"`
	Raw          string   `json:"raw"` // the string as the printer sent it, control bytes removed
}

// ErrNoDeviceID says the transport cannot ask for a Device ID (serial, tcp, a FIFO, a file).
var ErrNoDeviceID = errors.New("transport cannot read an IEEE 1284 Device ID")

// ParseDeviceID reads a Device ID as the printer-class GET_DEVICE_ID request and usblp's
// LPIOC_GET_DEVICE_ID return it: two bytes of big-endian length, then the string. The length
// is not trusted (Linux's printer gadget counts the string without the two bytes, some drivers
// strip them): the string is whatever follows, up to a NUL. Input that does not begin with a
// length is read as a bare string.
func ParseDeviceID(raw []byte) (DeviceID, error) {
	b := raw
	if len(b) >= 2 && (b[0] < 0x20 || b[1] < 0x20) {
		b = b[2:]
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, string(b))
	id := DeviceID{Raw: clean}
	for _, field := range strings.Split(clean, ";") {
		k, v, ok := strings.Cut(field, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "MFG", "MANUFACTURER":
			id.Manufacturer = v
		case "MDL", "MODEL":
			id.Model = v
		case "CMD", "COMMAND SET", "COMMANDSET":
			for _, c := range strings.Split(v, ",") {
				if c = strings.TrimSpace(c); c != "" {
					id.Commands = append(id.Commands, c)
				}
			}
		case "CLS", "CLASS":
			id.Class = v
		case "DES", "DESCRIPTION":
			id.Description = v
		case "SN", "SERN", "SERIALNUMBER":
			id.Serial = v
		}
	}
	if id.Manufacturer == "" && id.Model == "" {
		return id, fmt.Errorf("printer: Device ID %q names neither manufacturer nor model", clean)
	}
	return id, nil
}

// ESCPOS reports whether the printer says it speaks ESC/POS (CMD:ESC/POS, ESCPOS, ESC/POS
// emulation). A Star printer in Star Line Mode says CMD:STAR and prints ecrd's jobs as garbage.
func (id DeviceID) ESCPOS() bool {
	for _, c := range id.Commands {
		n := strings.ToUpper(strings.NewReplacer("/", "", "-", "", " ", "").Replace(c))
		if strings.HasPrefix(n, "ESCPOS") {
			return true
		}
	}
	return false
}

// DeviceIDReader is implemented by printers whose transport can ask the device who it is
// (usb: and lp:). Detection uses it to pick a printer profile.
type DeviceIDReader interface {
	DeviceID(ctx context.Context) (DeviceID, error)
}

// DeviceIDConn is a Conn that can fetch the raw Device ID (usblp's ioctl, a USB control
// request), in the form ParseDeviceID reads. It returns an error wrapping ErrNoDeviceID when
// this device cannot answer it (a vendor-class USB interface, a file behind lp:).
type DeviceIDConn interface {
	RawDeviceID(ctx context.Context) ([]byte, error)
}

// DeviceID asks the device for its IEEE 1284 Device ID. It returns ErrNoDeviceID (wrapped)
// for transports that cannot, and an error when the device is not there.
func (d *device) DeviceID(ctx context.Context) (DeviceID, error) {
	if err := d.lock(ctx); err != nil {
		return DeviceID{}, err
	}
	defer d.unlock()
	c, err := d.connect(ctx)
	if err != nil {
		return DeviceID{}, err
	}
	r, ok := c.(DeviceIDConn)
	if !ok {
		return DeviceID{}, fmt.Errorf("printer %s: %w", d.uri, ErrNoDeviceID)
	}
	raw, err := r.RawDeviceID(ctx)
	if err != nil {
		return DeviceID{}, fmt.Errorf("printer %s: Device ID: %w", d.uri, err)
	}
	return ParseDeviceID(raw)
}
