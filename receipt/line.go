package receipt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Line is one secupay receipt line: {"type": T, "value": {...}}.
//
// Its UnmarshalJSON is lenient (see Value), so other packages that decode a
// transaction's receipt straight into []Line get the same tolerance as Decode.
type Line struct {
	Type  string `json:"type"`
	Value Value  `json:"value"`
}

// Value carries the fields of every line type; a type uses the ones it knows.
type Value struct {
	Caption    string   `json:"caption,omitempty"`
	Text       string   `json:"text,omitempty"`
	Name       string   `json:"name,omitempty"`
	Value      string   `json:"value,omitempty"`
	Decoration []string `json:"decoration,omitempty"`
}

// ErrEmpty means there is nothing to print: the receipt is missing, null or an
// empty array. secupay documents that a receipt "may" be present after a
// payment, so callers decide with errors.Is whether that is a fault.
var ErrEmpty = errors.New("receipt: no receipt lines")

// Decode reads a Smart Transaction object (it uses its "receipt" key) or a
// bare line array, whichever data holds.
func Decode(data []byte) ([]Line, error) { return DecodeLimited(data, 0) }

// ErrTooManyLines is returned by DecodeLimited for a receipt longer than its limit.
var ErrTooManyLines = errors.New("receipt: too many lines")

// DecodeLimited is Decode for input from outside the till (the POS's own receipts): it
// counts the lines before decoding any, and refuses more than maxLines (0: no limit), so
// that a few megabytes of "{}" cannot become gigabytes of decoded lines.
func DecodeLimited(data []byte, maxLines int) ([]Line, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, ErrEmpty
	}
	switch trimmed[0] {
	case '[':
		return decodeLines(data, maxLines, nil)
	case '{':
		// Only the receipt is decoded; the rest of the transaction (whose
		// field types drift between secupay versions) is skipped unseen.
		var tx struct {
			Receipt json.RawMessage `json:"receipt"`
		}
		if err := json.Unmarshal(data, &tx); err != nil {
			return nil, jsonError("transaction", err)
		}
		return decodeLines(tx.Receipt, maxLines, nil)
	}
	if err := json.Unmarshal(data, new(any)); err != nil {
		return nil, jsonError("input", err)
	}
	if string(bytes.TrimSpace(data)) == "null" {
		return nil, ErrEmpty
	}
	return nil, fmt.Errorf("receipt: want a transaction object or a line array, got %s", kind(trimmed))
}

// DecodeLines reads a bare line array, such as the json.RawMessage of a
// transaction's receipt or receipt_merchant. Missing, null or empty is ErrEmpty.
func DecodeLines(raw []byte) ([]Line, error) { return decodeLines(raw, 0, nil) }

// DecodeLinesSkipping is DecodeLines for a receipt that must print even when part of it is
// broken (a captured payment's): a line that is not a line object is left out and reported
// to skipped, and the others are returned. Only an input with no line to print fails.
func DecodeLinesSkipping(raw []byte, skipped func(line int, err error)) ([]Line, error) {
	return decodeLines(raw, 0, skipped)
}

func decodeLines(raw []byte, maxLines int, skipped func(int, error)) ([]Line, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, ErrEmpty
	}
	if maxLines > 0 && len(trimmed) > 0 && trimmed[0] == '[' {
		if n := countElems(trimmed, maxLines); n > maxLines {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyLines, maxLines)
		}
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("receipt: want an array of lines, got %s", kind(trimmed))
		}
		return nil, jsonError("lines", err)
	}
	if len(elems) == 0 {
		return nil, ErrEmpty
	}
	lines := make([]Line, 0, len(elems))
	for i, e := range elems {
		var l Line
		if err := l.UnmarshalJSON(e); err != nil {
			err = fmt.Errorf("receipt: line %d: %w", i, err)
			if skipped == nil {
				return nil, err
			}
			skipped(i, err)
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: none of %d lines could be read", ErrEmpty, len(elems))
	}
	return lines, nil
}

// countElems counts the elements of the JSON array trimmed without keeping them; it stops
// counting past limit.
func countElems(trimmed []byte, limit int) int {
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil {
		return 0
	}
	var skip json.RawMessage
	n := 0
	for dec.More() && n <= limit {
		if err := dec.Decode(&skip); err != nil {
			return n
		}
		n++
	}
	return n
}

// UnmarshalJSON accepts a line object whose value is missing, null, an object
// or (leniently) a bare scalar, which is taken as the line's text.
func (l *Line) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return fmt.Errorf("want an object, got %s", kind(data))
	}
	var raw struct {
		Type  flexString      `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return jsonError("line", err)
	}
	*l = Line{Type: string(raw.Type)}
	return l.Value.UnmarshalJSON(raw.Value)
}

// UnmarshalJSON is lenient because secupay's field types drift: numbers where
// strings are documented (a TA code 29008410), decoration as null, one string
// or an array. Fields of a shape that cannot be text are ignored rather than
// failing the whole receipt for one odd line.
func (v *Value) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*v = Value{}
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	if data[0] != '{' {
		var s flexString
		if err := s.UnmarshalJSON(data); err != nil {
			return err
		}
		v.Text = string(s)
		return nil
	}
	var raw struct {
		Caption    flexString      `json:"caption"`
		Text       flexString      `json:"text"`
		Name       flexString      `json:"name"`
		Value      flexString      `json:"value"`
		Decoration json.RawMessage `json:"decoration"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return jsonError("value", err)
	}
	v.Caption, v.Text, v.Name, v.Value = string(raw.Caption), string(raw.Text), string(raw.Name), string(raw.Value)
	dec, err := decodeDecoration(raw.Decoration)
	if err != nil {
		return err
	}
	v.Decoration = dec
	return nil
}

// decodeDecoration accepts null, a single string or an array of scalars.
func decodeDecoration(data json.RawMessage) ([]string, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil, nil
	}
	if data[0] != '[' {
		var s flexString
		if err := s.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		if s == "" {
			return nil, nil
		}
		return []string{string(s)}, nil
	}
	var items []flexString
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, jsonError("decoration", err)
	}
	var out []string
	for _, it := range items {
		if it != "" {
			out = append(out, string(it))
		}
	}
	return out, nil
}

// flexString takes any JSON scalar as text: a number keeps its literal
// digits (no float rounding of long card numbers), a boolean its word, null
// is empty. Objects and arrays carry no printable text and become empty.
type flexString string

func (f *flexString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*f = ""
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return jsonError("string", err)
		}
		*f = flexString(s)
	case 'n', '{', '[':
		// null, or a structure with no single text: nothing to print.
	default:
		// Numbers and booleans: encoding/json has already validated the
		// literal, so its text is the value.
		*f = flexString(data)
	}
	return nil
}

// jsonError names where malformed JSON broke, so a technician can find the
// byte in the file ecrd was given.
func jsonError(what string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("receipt: malformed JSON in %s at byte offset %d: %w", what, se.Offset, err)
	}
	return fmt.Errorf("receipt: %s: %w", what, err)
}

// kind names a JSON value's type for error messages without quoting
// (possibly huge or hostile) input back.
func kind(data []byte) string {
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if strings.IndexByte("-0123456789", data[0]) >= 0 {
		return "a number"
	}
	return "invalid JSON"
}
