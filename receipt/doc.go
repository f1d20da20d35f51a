// Package receipt owns secupay's receipt model (the line types separator,
// textline, name-value and space, and their decorations) and its layout on
// thermal paper of a given column count. It renders a receipt two ways from
// one layout: an ESC/POS print job (Render) and a plain-text preview
// (Preview) that shows the same characters in the same columns; and it draws a job's bytes as
// the printer will print them, pictures included (DrawJob, JobPNG; DrawJobFor with the
// options the job was rendered with). A printer profile (package profile) supplies the
// columns, the code-page slots and the cut.
//
// Receipt text comes from the network, so the package treats it as hostile:
// control characters are removed before encoding, text is NFC-normalised and
// encoded into the best of the printer's code pages for each run of text (or
// the one page the options name). What no page has is drawn, on a printer that
// prints raster images, from GNU Unifont (package unifont reads its .hex file):
// the whole paper line as one GS v 0 picture in the same columns, a character
// the font lacks as a box. Elsewhere it is transliterated ("€" -> "EUR",
// accents stripped) or printed as '?', and counted (Options.Counters).
//
// It must never do device I/O (printer does, with real errors), and it must
// never send UTF-8 or any byte of receipt text below 0x20 to a printer: the
// only control bytes in a job are the commands this package writes (a picture's
// dots are that command's data, of the length it announces).
// github.com/kenshaw/escpos is used only into an in-memory buffer and only
// for the calls that emit correct bytes (see docs/escpos.md). Its setters
// (SetFontSize, SetAlign, SetFont, SetLang, ...) must only ever get constants:
// on a value they do not know they call log.Logger.Fatalf, which would exit
// the daemon in the middle of a capture.
package receipt
