package receipt_test

import (
	"fmt"

	"github.com/ecrd-pos/ecrd/receipt"
)

// A two-line receipt on 58 mm paper (32 columns), as the printer will print it: the text
// preview comes from the same layout as the ESC/POS bytes.
func ExamplePreview() {
	lines, err := receipt.DecodeLines([]byte(`[
		{"type": "textline", "value": {"text": "Bäckerei Müller", "decoration": ["align-center", "important"]}},
		{"type": "name-value", "value": {"name": "Summe", "value": "7,96 €"}}
	]`))
	if err != nil {
		panic(err)
	}
	text, err := receipt.Preview(lines, receipt.Options{Columns: 32})
	if err != nil {
		panic(err)
	}
	fmt.Print(text)
	// Output:
	//         Bäckerei Müller
	// Summe                     7,96 €
	//
	// --- cut ---
}

// Render makes the print job: it starts by resetting the printer and selecting the code
// page (ESC @, ESC R 0, ESC t 19 for cp858), encodes the text in it — never UTF-8 — and ends
// with the cut.
func ExampleRender() {
	lines, err := receipt.DecodeLines([]byte(`[{"type": "textline", "value": {"text": "Grüße, 5 €"}}]`))
	if err != nil {
		panic(err)
	}
	job, err := receipt.Render(lines, receipt.Options{Columns: 32, CodePage: "cp858", Cut: receipt.CutPartial})
	if err != nil {
		panic(err)
	}
	fmt.Printf("start: % x\n", job[:8])
	fmt.Printf("text:  %q\n", job[8:19])
	fmt.Printf("cut:   % x\n", job[len(job)-4:])
	// Output:
	// start: 1b 40 1b 52 00 1b 74 13
	// text:  "Gr\x81\xe1e, 5 \xd5\n"
	// cut:   1d 56 42 03
}
