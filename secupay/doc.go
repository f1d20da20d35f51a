// Package secupay is ecrd's client of the secupay (secuconnect) Smart Transactions API: it
// captures a transaction paid in cash (POST /api/v2/Smart/Transactions/{id}/start/cash), reads
// one back (GET /api/v2/Smart/Transactions/{id}), holds the bearer token (a static token file or
// OAuth with client credentials or the device grant) and turns secupay's answers into a
// *Transaction or a typed *Error.
//
// It owns the wire: URLs, headers, timeouts, token renewal, lenient decoding of drifting types,
// and the one decision that keeps money safe — when an answer was lost it says so
// (ErrOutcomeUnknown) instead of guessing.
//
// It must never: retry start/cash blindly (a second capture is undocumented; after a refused
// token it reads the transaction first), send a request for an id that is not ValidID, talk
// plain HTTP to anything but loopback, disable TLS verification, request more than one token at
// a time (secupay invalidates the old token when it issues a new one), or log a token or secret.
// Journalling, printing and the POS's API live elsewhere.
package secupay
