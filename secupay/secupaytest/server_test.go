package secupaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, s *Server, method, path, tok, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

func TestSeedCaptureAsDocumented(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.AddSeed()
	p := "/api/v2/Smart/Transactions/" + SeedID
	if code, m := do(t, s, "GET", p, DefaultToken, "", ""); code != 200 || m["status"] != "created" || m["trans_id"] != nil {
		t.Fatalf("%d %v", code, m)
	}
	code, m := do(t, s, "POST", p+"/start/cash", DefaultToken, "application/json", "")
	if code != 200 || m["status"] != "ok" || m["trans_id"] != "29008411" || m["payment_method"] != "cash" {
		t.Fatalf("%d %v", code, m)
	}
	var want map[string]any
	json.Unmarshal(SeedAnswer(), &want)
	if len(m["receipt"].([]any)) != len(want["receipt"].([]any)) {
		t.Error("receipt differs from the seed's")
	}
	if code, m := do(t, s, "POST", p+"/start/cash", DefaultToken, "", ""); code != 400 || m["error"] != "ProductInternalException" {
		t.Errorf("second start: %d %v", code, m)
	}
	if code, m := do(t, s, "GET", p, "", "", ""); code != 403 || m["error"] != "ProductNotAllowedException" || m["code"] != 2003.0 {
		t.Errorf("no token: %d %v", code, m)
	}
	if code, _ := do(t, s, "GET", "/api/v2/Smart/Transactions/STX_%2F", DefaultToken, "", ""); code != 404 {
		t.Errorf("escaped slash: %d", code)
	}
	if s.Calls().StartCash[SeedID] != 2 || s.Calls().Captures[SeedID] != 1 || s.Calls().Get[SeedID] != 2 {
		t.Error("counters")
	}
}

func TestTokenEndpointJSONAndInvalidation(t *testing.T) {
	s := NewServer()
	defer s.Close()
	body := `{"grant_type":"client_credentials","client_id":"` + ClientID + `","client_secret":"` + ClientSecret + `"}`
	code, m := do(t, s, "POST", "/oauth/token", "", "application/json", body)
	if code != 200 || m["access_token"] != s.Token() || m["expires_in"] != 1200.0 {
		t.Fatalf("%d %v", code, m)
	}
	if code, _ := do(t, s, "GET", "/api/v2/Smart/Transactions/STX_X", DefaultToken, "", ""); code != 403 {
		t.Error("old token still accepted after a new one was issued")
	}
	code, m = do(t, s, "POST", "/oauth/token", "", "application/x-www-form-urlencoded", "grant_type=device&client_id="+ClientID+"&client_secret="+ClientSecret+"&uuid=/vendor/x/serial/1")
	if code != 200 || m["user_code"] == "" || m["interval"] != 5.0 {
		t.Fatalf("%d %v", code, m)
	}
	poll := "grant_type=device&client_id=" + ClientID + "&client_secret=" + ClientSecret + "&code=" + m["device_code"].(string)
	if code, m := do(t, s, "POST", "/oauth/token", "", "application/x-www-form-urlencoded", poll); code != 401 || m["error"] != "authorization_pending" {
		t.Fatalf("%d %v", code, m)
	}
	s.ConfirmDevice()
	if code, m := do(t, s, "POST", "/oauth/token", "", "application/x-www-form-urlencoded", poll); code != 200 || m["refresh_token"] == nil {
		t.Fatalf("%d %v", code, m)
	}
}
