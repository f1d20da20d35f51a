package secupay

import (
	"bytes"
	"testing"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

func TestDecodeTransactionDrift(t *testing.T) {
	for _, in := range []string{
		`{"id":"STX_A","status":"ok","trans_id":29008411,"is_demo":"true","receipt_merchant_print":1}`,
		`{"id":"STX_A","status":"ok","trans_id":"29008411","is_demo":true,"receipt_merchant_print":true,"unknown":{"x":[1,2]}}`,
	} {
		tx, err := decodeTransaction([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if tx.TransID != "29008411" || !tx.IsDemo || !tx.ReceiptMerchantPrint || !bytes.Equal(tx.Raw, []byte(in)) {
			t.Errorf("%s: %+v", in, tx)
		}
	}
	tx, err := decodeTransaction([]byte(`{"id":null,"status":"ok","trans_id":null,"receipt":null,"payment_method":{"a":1},"is_demo":null}`))
	if err != nil || tx.TransID != "" || tx.Receipt != nil || tx.PaymentMethod != "" {
		t.Errorf("%+v %v", tx, err)
	}
	tx, err = decodeTransaction(secupaytest.SeedAnswer())
	if err != nil || tx.Status != "ok" || tx.TransID != "29008411" || tx.ReceiptMerchant != nil {
		t.Errorf("seed: %+v %v", tx, err)
	}
}

// FuzzDecodeTransaction: whatever secupay (or a proxy) sends, decoding never panics, and a
// decoded answer keeps its bytes exactly.
func FuzzDecodeTransaction(f *testing.F) {
	f.Add(secupaytest.SeedAnswer())
	f.Add([]byte(`{"status":"ok","trans_id":1e400,"code":"x","is_demo":"1"}`))
	f.Add([]byte(`{"status":"error","error":"ProductNotAllowedException","code":2003,"supportId":"f8e0"}`))
	f.Add([]byte(`{"status":["ok"],"trans_id":{"a":null},"receipt":"x","is_demo":-0.0}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"status":"\ud800"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if tx, err := decodeTransaction(data); err == nil && !bytes.Equal(tx.Raw, data) {
			t.Errorf("Raw differs from input")
		}
		if e, err := decodeError("capture", "STX_A", 500, data); err == nil {
			_ = e.Error()
		}
	})
}
