package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/profile"
)

// detectTimeout bounds asking a printer who it is at start: a printer that is not plugged in
// must not delay the daemon.
const detectTimeout = 3 * time.Second

// chooseProfile picks the printer profile for --model: a named model, generic, or (auto) the
// profile matching the printer's IEEE 1284 Device ID where the transport can read one. The
// second result says why, for the log and `ecrd status`.
func chooseProfile(ctx context.Context, lf layoutFlags, p printer.Printer) (*profile.Profile, string, error) {
	prof, auto, err := lf.profile()
	if err != nil {
		return nil, "", err
	}
	if !auto {
		return prof, "--model " + prof.Key, nil
	}
	r, ok := p.(printer.DeviceIDReader)
	if !ok {
		return profile.Generic, fmt.Sprintf("generic: %s cannot tell its model (set --model)", p), nil
	}
	ctx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	id, err := r.DeviceID(ctx)
	switch {
	case errors.Is(err, printer.ErrNoDeviceID):
		return profile.Generic, fmt.Sprintf("generic: %v (set --model)", err), nil
	case err != nil:
		return profile.Generic, fmt.Sprintf("generic: could not read the Device ID at start: %v", err), nil
	}
	found, how := profile.Match(id.Manufacturer, id.Model)
	warn := ""
	if !id.ESCPOS() {
		warn = fmt.Sprintf("; WARNING: the printer lists command sets %v, not ESC/POS — switch it to ESC/POS mode", id.Commands)
	}
	if found == nil {
		return profile.Generic, fmt.Sprintf("generic: Device ID %q: %s (set --model)%s", id.Raw, how, warn), nil
	}
	return found, fmt.Sprintf("Device ID %q: %s%s", id.Raw, how, warn), nil
}

// modelPrinter reports the profile in use with every status answer.
type modelPrinter struct {
	printer.Printer
	model, source string
}

func (m modelPrinter) Status(ctx context.Context) (printer.Status, error) {
	st, err := m.Printer.Status(ctx)
	st.Model, st.ModelSource = m.model, m.source
	return st, err
}
