package secupay

import (
	"errors"
	"net/http"
)

// Status is a Smart Transaction's status as secupay spells it. secupay's status flow
// (docs/secupay.md, "Statuses") is the one vocabulary ecrd decides on; every question about
// a status is one of the methods below, so the word lists cannot drift apart.
type Status string

// The statuses secupay documents, plus the legacy SDKs' spellings.
const (
	StatusCreated    Status = "created"    // new or modified; not captured
	StatusProcessing Status = "processing" // after /preTransaction; not captured
	StatusApproved   Status = "approved"   // pre-authorised; not captured yet
	StatusPending    Status = "pending"    // a capture was requested and not acknowledged yet: wait
	StatusOK         Status = "ok"         // captured ("you can deliver")
	StatusReceived   Status = "received"   // order intents, after ok
	StatusShipped    Status = "shipped"
	StatusCollection Status = "collection"
	StatusCollected  Status = "collected"
	StatusFailed     Status = "failed" // authorising or capturing failed
	StatusCancelled  Status = "cancelled"
	StatusCanceled   Status = "canceled" // legacy spelling
	StatusAborted    Status = "aborted"  // legacy
	StatusTimeout    Status = "timeout"  // legacy
)

// Captured reports whether the money was captured: "ok", or a status secupay's flow reaches
// only after "ok". The spelling must be exact: "OK" or "Ok" is a word secupay does not use,
// and a word ecrd does not know is never taken for money received.
func (s Status) Captured() bool {
	switch s {
	case StatusOK, StatusReceived, StatusShipped, StatusCollection, StatusCollected:
		return true
	}
	return false
}

// Capturable reports whether start/cash may be sent in this status: the transaction is
// neither captured nor being captured nor finished.
func (s Status) Capturable() bool {
	switch s {
	case StatusCreated, StatusProcessing, StatusApproved:
		return true
	}
	return false
}

// Final reports whether the transaction ended without a capture and never will be captured.
func (s Status) Final() bool {
	switch s {
	case StatusFailed, StatusCancelled, StatusCanceled, StatusAborted, StatusTimeout:
		return true
	}
	return false
}

// Outcome is what one CaptureCash call means for the money. Every result of CaptureCash is
// exactly one of them (Classify); what ecrd does next depends on nothing else.
type Outcome int

const (
	// Captured: 200 with a clean status "ok". The answer holds the receipt.
	Captured Outcome = iota + 1
	// Refused: secupay answered, unambiguously, that it did not capture.
	Refused
	// InDoubt: the request may have reached secupay and no answer says what it did —
	// a timeout, a cut or unreadable answer, a 5xx, a 200 whose status is not exactly "ok",
	// a token refused and not renewable. Only reading the transaction back can settle it.
	InDoubt
	// NotSent: the request certainly never reached secupay (no connection, no token, a
	// configuration that forbids the call). Nothing can have been captured.
	NotSent
)

func (o Outcome) String() string {
	switch o {
	case Captured:
		return "captured"
	case Refused:
		return "refused"
	case InDoubt:
		return "in_doubt"
	case NotSent:
		return "not_sent"
	}
	return "unknown"
}

// Classify puts the result of CaptureCash in exactly one Outcome. When in doubt, it says so:
// InDoubt is the class of everything not proven to be one of the others.
func Classify(err error) Outcome {
	if err == nil {
		return Captured
	}
	if errors.Is(err, ErrNotSent) {
		return NotSent
	}
	var se *Error
	if !errors.As(err, &se) || errors.Is(err, ErrOutcomeUnknown) {
		return InDoubt
	}
	switch {
	case se.HTTPStatus == http.StatusOK:
		// A 200 whose status is not exactly "ok": secupay acted on the call, but the
		// answer does not say it captured. Read back.
		return InDoubt
	case se.authRefused():
		// The token was refused and could not be renewed: the read-back that would show
		// what the refused call did could not be made either.
		return InDoubt
	case se.HTTPStatus == http.StatusRequestTimeout, se.HTTPStatus == http.StatusConflict,
		se.HTTPStatus == http.StatusTooEarly, se.HTTPStatus == http.StatusTooManyRequests:
		// Statuses that say "not now" or "busy with it", not "no".
		return InDoubt
	case se.HTTPStatus >= 400 && se.HTTPStatus < 500 && se.documented():
		return Refused
	}
	// Any other 4xx — an empty object, {"status":"ok"}, a gateway's {"message":"no route"} —
	// may come from a proxy in front of a secupay that did capture: it proves nothing.
	return InDoubt
}

// documented reports whether e has the shape of secupay's documented error payload
// (ProductExceptionPayload): "status" is "error" ("The status will always be error",
// docs/secupay.md) and "error" names the exception. Only such a body is secupay's own word;
// a refusal must prove itself by it.
func (e *Error) documented() bool {
	return e.Status == "error" && e.Err != ""
}

// authRefused: secupay's documented answer to a missing or expired token is 403
// ProductNotAllowedException; the SDKs also re-authenticate on 401.
func (e *Error) authRefused() bool {
	return e.HTTPStatus == http.StatusUnauthorized || e.HTTPStatus == http.StatusForbidden && e.Err == errNotAllowed
}
