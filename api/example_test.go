package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ecrd-pos/ecrd/api"
	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
	"github.com/ecrd-pos/ecrd/store"
)

// A POS captures a cash payment over the Unix socket, then asks again (as after a lost
// answer): the second answer comes from the journal, and secupay saw one start/cash. Here the
// daemon's parts are wired by hand against secupay's loopback fake and a file printer, as
// `ecrd serve` wires them against the real ones.
func Example_captureOverTheSocket() {
	dir, _ := os.MkdirTemp("", "ecrd-example")
	defer os.RemoveAll(dir)
	fake := secupaytest.NewServer()
	defer fake.Close()
	fake.AddSeed()

	// The daemon: token file, secupay client, printer, state log, spool and its worker,
	// journal, capture.
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte(fake.Token()), 0o600)
	client, err := secupay.NewClient(secupay.Config{BaseURL: fake.URL, Tokens: secupay.NewFileToken(token)})
	if err != nil {
		panic(err)
	}
	p, _ := printer.Open("file:" + filepath.Join(dir, "printer.bin"))
	defer p.Close()
	st, err := store.Open(dir) // the state database: the journal's and the spool's rows
	if err != nil {
		panic(err)
	}
	defer st.Close()
	sp, _ := spool.Open(st, p, spool.Options{Poll: 10 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	worked := make(chan struct{})
	go func() { sp.Run(ctx); close(worked) }()
	defer func() { stop(); <-worked }()
	journal, _ := capture.OpenJournal(st, nil)
	svc := capture.New(capture.Config{Journal: journal, Secupay: client, Spool: sp,
		Render: receipt.Options{Columns: 48}, PrintWait: 5 * time.Second})

	socket := filepath.Join(dir, "ecrd.sock")
	ln, err := api.Listen(socket)
	if err != nil {
		panic(err)
	}
	srv := api.NewServer(api.Handler(api.Config{Capture: svc, Lines: svc, Spool: sp}), nil)
	go srv.Serve(ln)
	defer srv.Close()

	// The POS: an HTTP client that dials the socket.
	pos := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	for range 2 {
		resp, err := pos.Post("http://ecrd/v1/transactions/"+secupaytest.SeedID+"/cash", "application/json", nil)
		if err != nil {
			panic(err)
		}
		var res api.Result
		json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, res.Outcome, res.TransID, "receipt", res.Job.State, "replayed:", res.Replayed)
	}
	fmt.Println("start/cash calls:", fake.Calls().StartCash[secupaytest.SeedID])
	// Output:
	// 200 captured 29008411 receipt printed replayed: false
	// 200 captured 29008411 receipt printed replayed: true
	// start/cash calls: 1
}
