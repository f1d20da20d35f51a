package main

import (
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/monitor"
	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt"
)

// receiptReports makes the daemon's receipts report what did not print as itself: counted in
// opt.Counters (a metric's source: monitor reads it), and logged, each character at warning
// level the first time in this life of the daemon and at debug level after that, so that a
// shop whose printer lacks a page is told once, not on every receipt. It also warns at start
// of a paper or column setting that contradicts the model, of a logo the model cannot print,
// and when the model draws pictures but the glyph font is not there.
func receiptReports(opt *receipt.Options, prof *profile.Profile, lf layoutFlags, log *zap.Logger) {
	for _, d := range lf.disagreements(prof) {
		log.Warn("printer settings: "+d, zap.String("model", prof.Key))
	}
	opt.Counters = new(receipt.Counters)
	var seen sync.Map
	opt.OnUnprintable = func(u receipt.Unprintable) {
		level := log.Debug
		if _, again := seen.LoadOrStore(u.Char, true); !again {
			level = log.Warn
		}
		level("character not printed as itself", zap.String("char", string(u.Char)),
			zap.String("code_point", fmt.Sprintf("U+%04X", u.Char)), zap.String("printed_as", u.PrintedAs), zap.String("why", u.Why))
	}
	switch {
	case !prof.Raster && opt.Logo != nil:
		log.Warn("the printer model prints no pictures: the --logo is left out, and characters none of its code pages has are transliterated", zap.String("model", prof.Key))
	case !prof.Raster:
		log.Info("the printer model prints no pictures: characters none of its code pages has are transliterated", zap.String("model", prof.Key))
	case opt.Glyphs == nil:
		log.Info("no glyph font (--glyphs is empty): characters no code page of the printer has are transliterated")
	default:
		if _, err := os.Stat(opt.Glyphs.Path()); err != nil {
			log.Warn("glyph font missing: characters no code page of the printer has are transliterated, not drawn; install the unifont package or set --glyphs",
				zap.String("glyphs", opt.Glyphs.Path()), zap.Error(err))
		}
	}
}

// characterCounts hands the renderer's counters to the monitor's metric.
func characterCounts(c *receipt.Counters) *monitor.CharacterCounts {
	if c == nil {
		return nil
	}
	return &monitor.CharacterCounts{Pictured: c.Pictured.Load, Substituted: c.Substituted.Load, Missing: c.Missing.Load}
}
