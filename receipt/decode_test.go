package receipt

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeEmpty(t *testing.T) {
	for _, in := range []string{``, `  `, `null`, `[]`, ` [ ] `, `{}`, `{"receipt": null}`, `{"receipt": []}`, `{"id": "STX_1", "receipt_merchant": [{"type":"space"}]}`} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrEmpty) {
			t.Errorf("Decode(%q) error %v, want ErrEmpty", in, err)
		}
	}
	for _, in := range []string{``, `null`, `[]`} {
		if _, err := DecodeLines([]byte(in)); !errors.Is(err, ErrEmpty) {
			t.Errorf("DecodeLines(%q) error %v, want ErrEmpty", in, err)
		}
	}
	if _, err := DecodeLines(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("DecodeLines(nil) error %v, want ErrEmpty", err)
	}
}

func TestDecodeLenient(t *testing.T) {
	tests := []struct {
		in   string
		want Line
	}{
		{`{"type":"space"}`, Line{Type: "space"}},
		{`{"type":"space","value":null}`, Line{Type: "space"}},
		{`{"type":"space","value":{}}`, Line{Type: "space"}},
		{`{"type":"name-value","value":{"name":"TA Code:","value":29008410}}`, Line{Type: "name-value", Value: Value{Name: "TA Code:", Value: "29008410"}}},
		// a card number beyond float64 precision keeps every digit
		{`{"type":"name-value","value":{"name":"Karte","value":9276004429942845123}}`, Line{Type: "name-value", Value: Value{Name: "Karte", Value: "9276004429942845123"}}},
		{`{"type":"name-value","value":{"name":"x","value":12.50,"decoration":null}}`, Line{Type: "name-value", Value: Value{Name: "x", Value: "12.50"}}},
		{`{"type":"textline","value":{"text":"a","decoration":"important"}}`, Line{Type: "textline", Value: Value{Text: "a", Decoration: []string{"important"}}}},
		{`{"type":"textline","value":{"text":"a","decoration":["align_left",null,1,""]}}`, Line{Type: "textline", Value: Value{Text: "a", Decoration: []string{"align_left", "1"}}}},
		{`{"type":"textline","value":{"text":true,"caption":{"x":1},"name":[1,2]},"unknown":{"deep":[1]}}`, Line{Type: "textline", Value: Value{Text: "true"}}},
		{`{"type":"textline","value":{"text":"a","decoration":{"x":1}}}`, Line{Type: "textline", Value: Value{Text: "a"}}},
		{`{"type":"textline","value":{"text":"a","decoration":[{"x":1},["important"],"important"]}}`, Line{Type: "textline", Value: Value{Text: "a", Decoration: []string{"important"}}}},
		{`{"type":"textline","value":"bare text"}`, Line{Type: "textline", Value: Value{Text: "bare text"}}},
		{`{"type":7,"value":[1]}`, Line{Type: "7"}},
		{`{"value":{"text":"no type"}}`, Line{Value: Value{Text: "no type"}}},
	}
	for _, tt := range tests {
		got, err := DecodeLines([]byte("[" + tt.in + "]"))
		if err != nil {
			t.Errorf("DecodeLines(%s): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, []Line{tt.want}) {
			t.Errorf("DecodeLines(%s) = %#v, want %#v", tt.in, got[0], tt.want)
		}
		// The same leniency holds for callers who unmarshal into []Line.
		var direct []Line
		if err := json.Unmarshal([]byte("["+tt.in+"]"), &direct); err != nil || !reflect.DeepEqual(direct, got) {
			t.Errorf("json.Unmarshal(%s) = %#v, %v", tt.in, direct, err)
		}
	}
}

func TestDecodeTransactionAndArray(t *testing.T) {
	tx := `{"object":"smart.transactions","trans_id":29008411,"basket":{"products":[{"articleNumber":30037}]},
		"receipt":[{"type":"separator","value":{"caption":"Kundenkarte"}},{"type":"space"}],
		"receipt_merchant":[{"type":"textline","value":{"text":"merchant"}}]}`
	lines, err := Decode([]byte(tx))
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{{Type: "separator", Value: Value{Caption: "Kundenkarte"}}, {Type: "space"}}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("Decode(tx) = %#v", lines)
	}
	arr, err := Decode([]byte(" \n[{\"type\":\"space\"}]"))
	if err != nil || !reflect.DeepEqual(arr, []Line{{Type: "space"}}) {
		t.Errorf("Decode(array) = %#v, %v", arr, err)
	}
	// Round trip: what Line marshals to decodes to the same lines.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeLines(b)
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("round trip %s = %#v, %v", b, back, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`[{"type":"space"},`, []string{"offset 18"}},
		{`{"receipt": [{"type": "space"} {"type": "space"}]}`, []string{"offset 32"}},
		{`[{"type":"space"}, 42]`, []string{"line 1", "number"}},
		{`[null]`, []string{"line 0", "null"}},
		{`[{"type":"space"}, {"type":"textline"}, "text"]`, []string{"line 2", "string"}},
		{`{"receipt": [[]]}`, []string{"line 0", "array"}},
		{`{"receipt": {"type":"space"}}`, []string{"want an array", "object"}},
		{`{"receipt": "x"}`, []string{"want an array", "string"}},
		{`"just a string"`, []string{"string"}},
		{`42`, []string{"number"}},
		{`nul`, []string{"offset"}},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if err == nil {
			t.Errorf("Decode(%s) succeeded", tt.in)
			continue
		}
		if errors.Is(err, ErrEmpty) {
			t.Errorf("Decode(%s) = ErrEmpty, want a decoding error", tt.in)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Decode(%s) error %q does not mention %q", tt.in, err, w)
			}
		}
	}
}

// A captured payment's receipt prints even when one line is not a line object: that line is
// left out and reported, the rest printed. The strict decoder refuses it (POS input).
func TestDecodeLinesSkippingBadLines(t *testing.T) {
	raw := []byte(`[{"type":"textline","value":{"text":"A"}}, 42, "x", null, [1], {"type":"textline","value":{"text":"B"}}]`)
	var skipped []int
	lines, err := DecodeLinesSkipping(raw, func(i int, err error) { skipped = append(skipped, i) })
	if err != nil || len(lines) != 2 || lines[0].Value.Text != "A" || lines[1].Value.Text != "B" {
		t.Fatalf("lines %+v, err %v", lines, err)
	}
	if fmt.Sprint(skipped) != "[1 2 3 4]" {
		t.Fatalf("skipped %v, want [1 2 3 4]", skipped)
	}
	if _, err := DecodeLines(raw); err == nil {
		t.Fatal("the strict decoder accepted a line that is not an object")
	}
	if _, err := DecodeLinesSkipping([]byte(`[1, 2]`), func(int, error) {}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("nothing printable: %v, want ErrEmpty", err)
	}
}

func TestDecodeLimited(t *testing.T) {
	if _, err := DecodeLimited([]byte(`[{},{},{}]`), 2); !errors.Is(err, ErrTooManyLines) {
		t.Fatalf("3 lines with a limit of 2: %v", err)
	}
	if _, err := DecodeLimited([]byte(`{"receipt":[{},{},{}]}`), 2); !errors.Is(err, ErrTooManyLines) {
		t.Fatalf("3 lines in a transaction with a limit of 2: %v", err)
	}
	if lines, err := DecodeLimited([]byte(`[{},{}]`), 2); err != nil || len(lines) != 2 {
		t.Fatalf("2 lines with a limit of 2: %v %v", lines, err)
	}
}
