package main

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// serve answers captures on a real Unix socket as ecrd would, with answer(id) as the body.
func serve(t *testing.T, answer func(id string) (int, string)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ecrd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/transactions/"), "/cash")
		code, body := answer(id)
		w.WriteHeader(code)
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func ok(id string) (int, string) {
	return 200, `{"status":"ok","transaction_id":"` + id + `","job":{"state":"printed"}}`
}

func TestEveryCaptureMustBeCapturedAndPrinted(t *testing.T) {
	if err := run(serve(t, ok), "STX_T", 20); err != nil {
		t.Fatalf("20 good answers: %v", err)
	}
	bad := map[string]func(string) (int, string){
		"queued, not printed": func(id string) (int, string) {
			return 200, `{"status":"ok","transaction_id":"` + id + `","job":{"state":"queued"}}`
		},
		"another transaction": func(string) (int, string) { return ok("STX_OTHER") },
		"secupay refused": func(string) (int, string) {
			return 502, `{"status":"error","error":{"code":"secupay_refused"}}`
		},
		"not JSON": func(string) (int, string) { return 200, "ok" },
	}
	for name, answer := range bad {
		n := 0
		sock := serve(t, func(id string) (int, string) {
			if n++; n < 5 {
				return ok(id)
			}
			return answer(id)
		})
		err := run(sock, "STX_T", 20)
		if err == nil || !strings.Contains(err.Error(), "capture 5 of 20") {
			t.Errorf("%s at the 5th capture: err %v, want it named", name, err)
		}
	}
}
