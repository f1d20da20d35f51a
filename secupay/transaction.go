package secupay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Transaction is the part of a Smart Transaction that ecrd acts on. Everything else secupay
// sends (basket, idents, merchant, fields added later) stays in Raw, byte for byte, so the
// journal keeps the whole answer and the receipt can be rendered from it.
type Transaction struct {
	Object               string          `json:"object"`
	ID                   string          `json:"id"`
	Status               Status          `json:"status"`
	TransID              string          `json:"trans_id"` // a number in the SDK, a string in the docs
	PaymentMethod        string          `json:"payment_method"`
	IsDemo               bool            `json:"is_demo"`
	Receipt              json.RawMessage `json:"receipt"`
	ReceiptMerchant      json.RawMessage `json:"receipt_merchant"`
	ReceiptMerchantPrint bool            `json:"receipt_merchant_print"`
	Raw                  json.RawMessage `json:"-"` // the whole answer as received, kept for the journal
}

// wireTransaction is what the decoder reads: every scalar through a lenient type, because
// secupay's types drift (trans_id is a number or a string, flags arrive as strings) and a
// drift in a field ecrd merely records must never turn a captured payment into an error.
type wireTransaction struct {
	Object               flexString      `json:"object"`
	ID                   flexString      `json:"id"`
	Status               flexString      `json:"status"`
	TransID              flexString      `json:"trans_id"`
	PaymentMethod        flexString      `json:"payment_method"`
	IsDemo               flexBool        `json:"is_demo"`
	Receipt              json.RawMessage `json:"receipt"`
	ReceiptMerchant      json.RawMessage `json:"receipt_merchant"`
	ReceiptMerchantPrint flexBool        `json:"receipt_merchant_print"`
}

// UnmarshalJSON decodes leniently and keeps a copy of data in Raw. Only a body that is not a
// JSON object is an error; unknown keys, nulls and mistyped scalars are not.
func (t *Transaction) UnmarshalJSON(data []byte) error {
	var w wireTransaction
	if err := decodeObject(data, &w); err != nil {
		return err
	}
	if n := topLevelKeyCount(data, "status"); n > 1 {
		// JSON decoders disagree on which duplicate wins ({"status":"error","status":"ok"});
		// an answer that says two things about the money says nothing.
		return fmt.Errorf("the answer names \"status\" %d times", n)
	}
	*t = Transaction{
		Object:               string(w.Object),
		ID:                   string(w.ID),
		Status:               Status(w.Status),
		TransID:              string(w.TransID),
		PaymentMethod:        string(w.PaymentMethod),
		IsDemo:               bool(w.IsDemo),
		Receipt:              nonNull(w.Receipt),
		ReceiptMerchant:      nonNull(w.ReceiptMerchant),
		ReceiptMerchantPrint: bool(w.ReceiptMerchantPrint),
		Raw:                  append(json.RawMessage(nil), data...),
	}
	return nil
}

// decodeTransaction is the one entry point for answers: the same rules as UnmarshalJSON.
func decodeTransaction(data []byte) (*Transaction, error) {
	t := new(Transaction)
	if err := t.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return t, nil
}

// decodeObject checks that data is exactly one JSON object before decoding it, so that "[]",
// "null" or a string — valid JSON that says nothing about a transaction — is not mistaken for
// an (empty) answer.
func decodeObject(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	if !json.Valid(trimmed) {
		return errors.New("not valid JSON")
	}
	return json.Unmarshal(trimmed, v)
}

// topLevelKeyCount counts how often key names a member of the JSON object data (which
// decodeObject has checked is one valid object).
func topLevelKeyCount(data []byte, key string) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return 0
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if k, _ := tok.(string); k == key {
			n++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return n
		}
	}
	return n
}

func nonNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return append(json.RawMessage(nil), m...)
}

// flexString accepts a string, a number (kept as its literal text, so 29008411 and "29008411"
// compare equal), a bool, or null. An object or array becomes "" rather than an error: a field
// of the wrong shape is recorded in Raw and must not fail the decode.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0, string(b) == "null":
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case b[0] == '{' || b[0] == '[':
		*s = ""
	default: // number, true, false: the literal text is the value
		*s = flexString(b)
	}
	return nil
}

// flexBool accepts true/false, "true"/"1"/"yes", numbers (non-zero is true) and null.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0, string(b) == "null", b[0] == '{', b[0] == '[':
		*f = false
	case string(b) == "true":
		*f = true
	case string(b) == "false":
		*f = false
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "yes":
			*f = true
		default:
			*f = false
		}
	default:
		n, err := strconv.ParseFloat(string(b), 64)
		*f = flexBool(err == nil && n != 0)
	}
	return nil
}

// Error is an answer from secupay that is not success: an error body on a 4xx/5xx, an OAuth
// error from the token endpoint, or a 200 whose transaction status is not "ok" (then
// Transaction is set). The API layer decides on it with errors.As instead of parsing text.
//
// An answer that could not be read at all (cut, timed out, not JSON) is never an *Error; it
// wraps ErrOutcomeUnknown instead, because nothing in it can be trusted.
type Error struct {
	Op            string // "capture", "get", "token"
	TransactionID string
	HTTPStatus    int
	Status        string       // body's status: "error", or the transaction's status on a 200 that is not "ok"
	Err           string       `json:"error"`         // e.g. ProductNotAllowedException, or an OAuth error such as invalid_client
	ErrorUser     string       `json:"error_user"`    // German, for the cashier
	ErrorDetails  string       `json:"error_details"` // for the technician; OAuth's error_description lands here
	Code          string       `json:"code"`          // number or string on the wire
	SupportID     string       `json:"supportId"`
	Transaction   *Transaction // set when a 200 answer carried a status other than "ok"
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("secupay: ")
	b.WriteString(e.Op)
	if e.TransactionID != "" {
		b.WriteString(" ")
		b.WriteString(e.TransactionID)
	}
	b.WriteString(": ")
	if e.Transaction != nil && e.HTTPStatus == 200 {
		fmt.Fprintf(&b, "status %q, not \"ok\"", e.Status)
		return b.String()
	}
	fmt.Fprintf(&b, "%d", e.HTTPStatus)
	if e.Err != "" {
		b.WriteString(" ")
		b.WriteString(e.Err)
	}
	if e.ErrorDetails != "" {
		b.WriteString(": ")
		b.WriteString(e.ErrorDetails)
	} else if e.ErrorUser != "" {
		b.WriteString(": ")
		b.WriteString(e.ErrorUser)
	}
	var extra []string
	if e.Code != "" {
		extra = append(extra, "code "+e.Code)
	}
	if e.SupportID != "" {
		extra = append(extra, "support id "+e.SupportID)
	}
	if len(extra) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(extra, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// wireError holds both shapes of error body: secupay's ProductException payload and OAuth's
// {"error", "error_description"} from /oauth/token.
type wireError struct {
	Status           flexString `json:"status"`
	Error            flexString `json:"error"`
	ErrorUser        flexString `json:"error_user"`
	ErrorDetails     flexString `json:"error_details"`
	ErrorDescription flexString `json:"error_description"`
	Code             flexString `json:"code"`
	SupportID        flexString `json:"supportId"`
	SupportIDSnake   flexString `json:"support_id"` // not seen on the wire, but harmless to accept
}

// decodeError reads an error body leniently. It fails only when body is not a JSON object.
func decodeError(op, id string, httpStatus int, body []byte) (*Error, error) {
	var w wireError
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	e := &Error{
		Op:            op,
		TransactionID: id,
		HTTPStatus:    httpStatus,
		Status:        string(w.Status),
		Err:           string(w.Error),
		ErrorUser:     string(w.ErrorUser),
		ErrorDetails:  string(w.ErrorDetails),
		Code:          string(w.Code),
		SupportID:     string(w.SupportID),
	}
	if e.ErrorDetails == "" {
		e.ErrorDetails = string(w.ErrorDescription)
	}
	if e.SupportID == "" {
		e.SupportID = string(w.SupportIDSnake)
	}
	return e, nil
}
