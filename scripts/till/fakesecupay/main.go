// Command fakesecupay runs secupay/secupaytest (the loopback fake of secupay's API) as a
// service in the till test bed's guest, on a fixed loopback address, with any valid
// transaction id existing on demand. It is a test tool and never part of the package.
//
// Every request is appended to -log (fsync before it is answered), so the calls survive a
// power cut and a reboot of the guest, when the fake itself starts empty again:
// GET /_fake/counts answers {"start_cash": {"STX_…": n}, "get": {…}, "total_start_cash": n}
// from that log, which is how the test bed shows that nothing was captured twice.
//
// POST /_fake/fault queues a fault (its JSON body is a secupaytest.Fault: Op, ID, Status,
// Body, Delay, Processing, Cut, CaptureFirst, Times; durations in nanoseconds) in the fake and
// answers 204; a scenario makes secupay slow or faulty with it. Faults live in memory: a restart
// of the fake drops them. Like /_fake/counts it is neither logged nor counted, and it answers
// loopback clients only.
//
// secupay itself does not lose power with the till: at start the fake captures again every
// transaction the log shows a start/cash for (directly, neither logged nor counted), so a
// read-back after the guest's reboot shows it captured, as secupay would.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8089", "loopback address to serve on")
	logPath := flag.String("log", "/var/lib/fakesecupay/requests.log", "durable request log")
	tokenOut := flag.String("token-out", "", "write the accepted bearer token to this file")
	clientOut := flag.String("client-out", "", "write the OAuth client id and secret to FILE.id and FILE.secret")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.") {
		log.Fatal("fakesecupay: listens on loopback only")
	}
	fake := secupaytest.NewServer()
	fake.SetAutoCreate(true)
	if *tokenOut != "" {
		if err := os.WriteFile(*tokenOut, []byte(fake.Token()+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	if *clientOut != "" {
		if err := os.WriteFile(*clientOut+".id", []byte(secupaytest.ClientID+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*clientOut+".secret", []byte(secupaytest.ClientSecret+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	if err := os.MkdirAll(strings.TrimSuffix(*logPath, "/requests.log"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := replay(fake, counts(*logPath)); err != nil {
		log.Fatal(err)
	}
	lf, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	target, _ := url.Parse(fake.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	http.HandleFunc("/_fake/counts", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(counts(*logPath))
	})
	http.HandleFunc("POST /_fake/fault", func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			http.Error(w, "loopback only", http.StatusForbidden)
			return
		}
		var f secupaytest.Fault
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
			return
		}
		fake.Fault(f)
		log.Printf("fakesecupay: fault queued: %+v", f)
		w.WriteHeader(http.StatusNoContent)
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		_, err := lf.WriteString(r.Method + " " + r.URL.Path + "\n")
		if err == nil {
			err = lf.Sync()
		}
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	log.Printf("fakesecupay: %s → %s", *addr, fake.URL)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// fromLoopback reports whether r came from a loopback address (the listener is loopback
// only; this says so again where a request changes how the fake behaves).
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// replay captures in fake every transaction t counts a start/cash for.
func replay(fake *secupaytest.Server, t tally) error {
	for id := range t.StartCash {
		req, err := http.NewRequest("POST", fake.URL+"/api/v2/Smart/Transactions/"+url.PathEscape(id)+"/start/cash", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+fake.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := fake.Client().Do(req)
		if err != nil {
			return fmt.Errorf("fakesecupay: replay %s: %w", id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fakesecupay: replay %s: %s", id, resp.Status)
		}
	}
	if len(t.StartCash) > 0 {
		log.Printf("fakesecupay: %d captures of the log replayed", len(t.StartCash))
	}
	return nil
}

type tally struct {
	StartCash      map[string]int `json:"start_cash"`
	Get            map[string]int `json:"get"`
	TotalStartCash int            `json:"total_start_cash"`
}

// counts reads the durable log: "POST /api/v2/Smart/Transactions/ID/start/cash" and
// "GET /api/v2/Smart/Transactions/ID".
func counts(path string) tally {
	t := tally{StartCash: map[string]int{}, Get: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return t
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		method, p, _ := strings.Cut(sc.Text(), " ")
		rest, ok := strings.CutPrefix(p, "/api/v2/Smart/Transactions/")
		if !ok {
			continue
		}
		id, tail, _ := strings.Cut(rest, "/")
		switch {
		case method == "POST" && tail == "start/cash":
			t.StartCash[id]++
			t.TotalStartCash++
		case method == "GET" && tail == "":
			t.Get[id]++
		}
	}
	return t
}
