package secupaytest

// The fake's OAuth half: the bearer tokens it accepts and its /oauth/token endpoint, with the
// client-credentials, device and refresh grants (docs/secupay.md, "Authentication").

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type device struct {
	uuid, userCode string
	confirmed      bool
	expires        time.Time
}

// Token is the bearer token currently accepted ("" after ExpireToken).
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// SetToken makes tok the one accepted token.
func (s *Server) SetToken(tok string) {
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
}

// RotateToken issues a new token, invalidating the current one as secupay does, and returns
// it (a test writes it into a token file, say).
func (s *Server) RotateToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked()
}

// ExpireToken invalidates the current token; none is accepted until one is issued.
func (s *Server) ExpireToken() {
	s.mu.Lock()
	s.token = ""
	s.mu.Unlock()
}

// IssuedTokens returns every token the server issued (for checking logs never contain one).
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{DefaultToken}, s.issued...)
}

func (s *Server) issueLocked() string {
	s.token = "tok_" + randHex(13)
	s.issued = append(s.issued, s.token)
	return s.token
}

// SetDeviceInterval sets the polling interval (seconds) the device grant announces.
func (s *Server) SetDeviceInterval(seconds int) {
	s.mu.Lock()
	s.interval = seconds
	s.mu.Unlock()
}

// ConfirmDevice confirms every pending device registration, as a technician entering the user
// code in SecuOffice would. It returns how many were confirmed.
func (s *Server) ConfirmDevice() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.devices {
		if !d.confirmed {
			d.confirmed = true
			n++
		}
	}
	return n
}

// PendingUserCodes returns the user codes waiting for confirmation.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var codes []string
	for _, d := range s.devices {
		if !d.confirmed {
			codes = append(codes, d.userCode)
		}
	}
	return codes
}

// --- /oauth/token ---

func (s *Server) handleToken(r *http.Request) answer {
	form, err := tokenForm(r)
	if err != nil {
		return oauthError(http.StatusBadRequest, "invalid_request", err.Error())
	}
	grant := form.Get("grant_type")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.Grants = append(s.calls.Grants, grant)
	if form.Get("client_id") == "" || form.Get("client_secret") == "" {
		return oauthError(http.StatusBadRequest, "invalid_client", "Client credentials were not found in the headers or body")
	}
	if form.Get("client_id") != ClientID || form.Get("client_secret") != ClientSecret {
		return oauthError(http.StatusBadRequest, "invalid_client", "The client credentials are invalid")
	}
	switch grant {
	case "":
		return oauthError(http.StatusBadRequest, "invalid_request", "The grant type was not specified in the request")
	case "client_credentials":
		return tokenAnswer(s.issueLocked(), "", "https://scope.secucard.com/e/api")
	case "refresh_token":
		if !s.refresh[form.Get("refresh_token")] {
			return oauthError(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
		}
		// As documented: no refresh_token in the answer, the session's one stays valid.
		return tokenAnswer(s.issueLocked(), "", nil)
	case "device":
		return s.deviceLocked(form)
	default:
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "Grant type "+strconv.Quote(grant)+" not supported")
	}
}

func (s *Server) deviceLocked(form url.Values) answer {
	if code := form.Get("code"); code != "" {
		d, ok := s.devices[code]
		switch {
		case !ok:
			return oauthError(http.StatusBadRequest, "invalid_grant", "Invalid device code")
		case !d.confirmed && time.Now().After(d.expires):
			delete(s.devices, code)
			return oauthError(http.StatusBadRequest, "expired_token", "The device code has expired")
		case !d.confirmed:
			return oauthError(http.StatusUnauthorized, "authorization_pending", "The user has not yet confirmed the device")
		}
		rt := randHex(20)
		s.refresh[rt] = true
		return tokenAnswer(s.issueLocked(), rt, nil)
	}
	uuid := form.Get("uuid")
	if uuid == "" {
		return oauthError(http.StatusBadRequest, "invalid_request", `Missing parameters: "uuid" or "code" required`)
	}
	code := randHex(16)
	d := &device{uuid: uuid, userCode: strings.ToLower(randHex(4)), expires: time.Now().Add(1200 * time.Second)}
	s.devices[code] = d
	data, _ := json.Marshal(map[string]any{
		"device_code": code, "user_code": d.userCode, "verification_url": VerificationURL,
		"expires_in": 1200, "interval": s.interval,
	})
	return answer{http.StatusOK, data}
}

// tokenForm reads the grant as a form (PHP SDK) or as JSON (the docs' examples, Java SDK).
func tokenForm(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("body is not JSON")
		}
		v := url.Values{}
		for k, x := range m {
			v.Set(k, fmt.Sprint(x))
		}
		return v, nil
	}
	return url.ParseQuery(string(body))
}

func tokenAnswer(access, refresh string, scope any) answer {
	m := map[string]any{"access_token": access, "expires_in": 1200, "token_type": "bearer", "scope": scope}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	data, _ := json.Marshal(m)
	return answer{http.StatusOK, data}
}

func oauthError(status int, code, desc string) answer {
	data, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	return answer{status, data}
}
