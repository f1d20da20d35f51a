package capture

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/internal/testbed"
	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
	"github.com/ecrd-pos/ecrd/store"
)

// newEnvAt is newEnv with the state directory (journal and spool) at state, the token file
// and printer elsewhere (they are configuration and a device, not state), and log for the
// service and the spool. The parts outside the service are internal/testbed's.
func newEnvAt(t *testing.T, state string, log *zap.Logger, mod func(*Config)) *env {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	till := testbed.New(t, testbed.Options{State: state, Logger: log})
	client := &switchClient{}
	sc := till.Secupay()
	sc.Logger = log
	client.set(t, sc)
	clock := steady.NewManual(time.Now(), time.Hour)
	j, err := OpenJournal(till.Store, clock)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Journal: j, Secupay: client, Spool: till.Spool, Render: receipt.Options{Columns: 48}, PrintWait: 5 * time.Second,
		Logger: log}
	if mod != nil {
		mod(&cfg)
	}
	return &env{t: t, till: till, fake: till.Fake, client: client, tokens: till.Tokens, clock: clock, journal: j, spool: till.Spool,
		state: till.State, tokenFile: till.TokenFile, printerFile: till.PrinterFile, svc: New(cfg), stop: till.StopSpool}
}

var errNoSpace = syscall.ENOSPC

func receiptLine(typ string, v map[string]any) map[string]any {
	return map[string]any{"type": typ, "value": v}
}

// A secupay receipt of 10,000 lines is captured, journaled whole and printed whole, in
// time that grows with the receipt (not with its square).
func TestTenThousandLineReceiptFromSecupay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.PrintWait = 60 * time.Second })
	const id, n = "STX_LONGRECEIPT10000", 10000
	lines := make([]any, 0, n)
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			lines = append(lines, receiptLine("textline", map[string]any{"text": fmt.Sprintf("Zeile %05d Brötchen", i)}))
		case 1:
			lines = append(lines, receiptLine("name-value", map[string]any{"name": fmt.Sprintf("Artikel %05d", i), "value": "1,99 €"}))
		case 2:
			lines = append(lines, receiptLine("separator", map[string]any{"caption": "Posten"}))
		default:
			lines = append(lines, receiptLine("textline", map[string]any{"text": strings.Repeat("lang ", 30), "decoration": []any{"important"}}))
		}
	}
	if err := e.fake.Add(map[string]any{"id": id, "receipt": lines}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := e.svc.Capture(context.Background(), id)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Job.State != JobPrinted {
		t.Fatalf("job %+v", res.Job)
	}
	b, _ := os.ReadFile(e.printerFile)
	if e.receipts() != 1 || !bytes.Contains(b, []byte("Zeile 00000 Br\x94tchen")) || !bytes.Contains(b, []byte("Artikel 09997")) {
		t.Fatalf("printed %d bytes, not the whole receipt once", len(b))
	}
	if lf := bytes.Count(b, []byte{'\n'}); lf < n {
		t.Fatalf("%d paper lines for %d receipt lines", lf, n)
	}
	rec, _ := e.journal.Get(id)
	var stored struct{ Receipt []json.RawMessage }
	if err := json.Unmarshal(rec.Answer, &stored); err != nil || len(stored.Receipt) != n {
		t.Fatalf("journal holds %d receipt lines (%v)", len(stored.Receipt), err)
	}
	t.Logf("10,000-line receipt: capture+journal+render+spool+print %v, %d bytes to the printer, %d-byte journal answer",
		took, len(b), len(rec.Answer))
	if took > 30*time.Second {
		t.Fatalf("a 10,000-line receipt took %v", took)
	}
}

// Control bytes in secupay's receipt text must never reach the printer as commands: the job
// holds only the commands Render emits (init, code page, bold, align, size, cut).
func TestControlBytesInSecupayReceiptNeverReachThePrinter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const id = "STX_CONTROLBYTES"
	hostile := []string{
		"esc init \x1b@ here",
		"cut \x1dV\x00 now",
		"status \x10\x04\x01 query",
		"drawer \x1bp\x00\x19\xfa kick",
		"c1 csi \u009b31m and nel \u0085 and \u0090 dcs",
		"bold off \x1bE\x00 size \x1d!\x11 del \x7f",
		"bell \a bs \b nul \x00 end",
	}
	var lines []any
	for i, h := range hostile {
		lines = append(lines,
			receiptLine("textline", map[string]any{"text": h, "decoration": []any{"important"}}),
			receiptLine("name-value", map[string]any{"name": h, "value": fmt.Sprintf("%d\x1bd\x05", i)}),
			receiptLine("separator", map[string]any{"caption": h}))
	}
	if err := e.fake.Add(map[string]any{"id": id, "receipt": lines}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Capture(context.Background(), id)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("capture %+v, %v", res, err)
	}
	job, _ := os.ReadFile(e.printerFile)
	if err := walkPrinted(job); err != nil {
		t.Fatalf("%v\njob: %q", err, job)
	}
	smuggled := append(append(bytes.Clone(job[:len(job)-4]), 0x1b, 'p', 0, 25, 250), job[len(job)-4:]...)
	if walkPrinted(smuggled) == nil {
		t.Fatal("the walker accepts ESC p: it proves nothing")
	}
	for _, seq := range [][]byte{{0x1b, '@'}, {0x1d, 'V', 0}, {0x10, 0x04}, {0x1b, 'p'}, {0x1b, 'd'}, {0x1d, '!', 0x11}} {
		if bytes.Contains(job[2:], seq) {
			t.Errorf("printer bytes contain % x from receipt text", seq)
		}
	}
	if !bytes.Contains(job, []byte("drawer @ kick")) && !bytes.Contains(job, []byte("drawer p")) {
		t.Errorf("the text around the control bytes is gone: %q", job)
	}
}

// walkPrinted accepts one job as Render writes it: ESC @ ESC R 0 ESC t n, then text, LF and
// only ESC E 0/1, ESC a 0-2, GS ! 0/1, then the cut GS V 65/66 n. Anything else is a command
// smuggled in from receipt text.
func walkPrinted(job []byte) error {
	if len(job) < 12 || !bytes.HasPrefix(job, []byte{0x1b, '@', 0x1b, 'R', 0, 0x1b, 't'}) {
		return fmt.Errorf("job does not start with the init sequence: % x", job[:min(12, len(job))])
	}
	cut := job[len(job)-4:]
	if cut[0] != 0x1d || cut[1] != 'V' || (cut[2] != 65 && cut[2] != 66) {
		return fmt.Errorf("job does not end with a cut: % x", cut)
	}
	body := job[8 : len(job)-4]
	for i := 0; i < len(body); i++ {
		b := body[i]
		switch {
		case b == '\n':
		case b == 0x1b || b == 0x1d:
			if i+2 >= len(body) {
				return fmt.Errorf("truncated command at %d", i)
			}
			cmd, n := body[i+1], body[i+2]
			ok := b == 0x1b && cmd == 'E' && n <= 1 || b == 0x1b && cmd == 'a' && n <= 2 || b == 0x1d && cmd == '!' && n <= 1
			if !ok {
				return fmt.Errorf("command % x at %d is not one Render emits", body[i:i+3], i)
			}
			i += 2
		case b < 0x20 || b == 0x7f:
			return fmt.Errorf("control byte %#02x in text at %d", b, i)
		}
	}
	return nil
}

// mountTmpfs mounts a small tmpfs: a real file system that can be made read-only (root
// writes through chmod) or filled, under the running code.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("LOUD SKIP: cannot mount a tmpfs here (%v: %s); the ENOTDIR variant in TestJournalFailureMeansNoCapture still runs", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, errNoSpace) {
				t.Fatalf("filling: %v", err)
			}
			return p
		}
	}
}

// captureWhile starts a capture of seed whose answer secupay delays; once start/cash has
// reached secupay (so the intent is on disk), breakIt runs. It returns the capture's result.
func captureWhile(t *testing.T, e *env, breakIt func()) (*Result, error) {
	t.Helper()
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Delay: 700 * time.Millisecond, CaptureFirst: true})
	type out struct {
		res *Result
		err error
	}
	ch := make(chan out, 1)
	go func() { r, err := e.svc.Capture(context.Background(), seed); ch <- out{r, err} }()
	wait.Until(t, 5*time.Second, "start/cash sent", func() bool { return e.fake.Calls().StartCash[seed] > 0 })
	// Durability rule 1: the intent was on disk before start/cash left.
	if rec, err := e.journal.Get(seed); err != nil || rec.Phase != PhaseIntent {
		t.Fatalf("start/cash sent with journal %+v, %v; want the intent on disk", rec, err)
	}
	breakIt()
	o := <-ch
	return o.res, o.err
}

// checkConsistent stops e's spool and reopens the state directory as a restarted daemon
// would, and checks that nothing in it is torn, left over or unreadable.
func checkConsistent(t *testing.T, e *env, state string) {
	t.Helper()
	e.stop()
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("state database after recovery: %v", err)
	}
	j, err := OpenJournal(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := j.Unfinished()
	if err != nil {
		t.Fatalf("journal unreadable after recovery: %v", err)
	}
	for _, id := range ids {
		if r, err := j.Get(id); err != nil || r.Phase == PhaseCaptured && !r.Spooled {
			t.Errorf("captured but not spooled after recovery: %+v, %v", r, err)
		}
	}
	p, _ := printer.Open("file:" + filepath.Join(t.TempDir(), "p.bin"))
	sp, err := spool.Open(st, p, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q := sp.Pending(); len(q) != 0 {
		t.Errorf("jobs still queued after recovery: %+v", q)
	}
}

func TestStateDirectoryReadOnlyOrFull(t *testing.T) {
	t.Parallel()
	// (A read-only remount, as ext4 does on errors, cannot be simulated here: the kernel
	// refuses it while the database is open for writing. Writes then fail as they do on a
	// full disk, which these cases cover.)
	t.Run("full before the capture", func(t *testing.T) {
		state := mountTmpfs(t, "2m")
		e := newEnvAt(t, state, nil, nil)
		filler := fill(t, state)
		_, err := e.svc.Capture(context.Background(), seed)
		if !errors.Is(err, ErrStorage) || !errors.Is(err, errNoSpace) {
			t.Fatalf("err = %v, want ErrStorage wrapping ENOSPC", err)
		}
		if n := e.fake.Calls().Requests; n != 0 {
			t.Fatalf("secupay called %d times without a journaled intent", n)
		}
		// Nothing was sent: no phantom unfinished capture for the resolver to fail on.
		if n := e.svc.Unfinished(); n != 0 {
			t.Fatalf("%d unfinished captures after an intent the disk refused", n)
		}
		if _, err := e.svc.PrintLines(context.Background(), []receipt.Line{{Type: "textline", Value: receipt.Value{Text: "x"}}}); !errors.Is(err, ErrStorage) {
			t.Fatalf("PrintLines on a full state dir: %v", err)
		}
		os.Remove(filler)
		res, err := e.svc.Capture(context.Background(), seed)
		if err != nil || res.Job.State != JobPrinted {
			t.Fatalf("after recovery: %+v, %v", res, err)
		}
		if e.fake.Calls().Captures[seed] != 1 || e.receipts() != 1 {
			t.Fatalf("captures %d receipts %d", e.fake.Calls().Captures[seed], e.receipts())
		}
		checkConsistent(t, e, state)
	})

	t.Run("full while secupay captures", func(t *testing.T) {
		state := mountTmpfs(t, "2m")
		e := newEnvAt(t, state, nil, nil)
		var filler string
		_, err := captureWhile(t, e, func() { filler = fill(t, state) })
		if !errors.Is(err, ErrStorage) || !errors.Is(err, errNoSpace) {
			t.Fatalf("err = %v, want ErrStorage wrapping ENOSPC", err)
		}
		// Another transaction: refused without secupay if its intent cannot be committed;
		// SQLite's log may still take it (pages it has room for on a full tmpfs), and then
		// it is captured.
		other := "STX_OTHERWHILEFULL"
		otherReceipts := 1
		if _, err := e.svc.Capture(context.Background(), other); err != nil {
			otherReceipts = 0
			if !errors.Is(err, ErrStorage) {
				t.Fatalf("capture while full: %v", err)
			}
			if e.fake.Calls().StartCash[other] != 0 {
				t.Fatal("start/cash sent without a journaled intent")
			}
		}
		if e.receipts() > otherReceipts {
			t.Fatal("printed without the answer journaled")
		}
		os.Remove(filler)
		res, err := e.svc.Capture(context.Background(), seed)
		if err != nil || res.Job.State != JobPrinted {
			t.Fatalf("after recovery: %+v, %v", res, err)
		}
		wait.Until(t, 10*time.Second, "the receipts", func() bool { return e.receipts() >= 1+otherReceipts })
		if e.fake.Calls().StartCash[seed] != 1 || e.fake.Calls().Captures[seed] != 1 || e.receipts() != 1+otherReceipts {
			t.Fatalf("start/cash %d, captures %d, receipts %d; want 1, 1, 1",
				e.fake.Calls().StartCash[seed], e.fake.Calls().Captures[seed], e.receipts())
		}
		// The other transaction can be captured now too.
		if res, err := e.svc.Capture(context.Background(), other); err != nil || res.Job.State != JobPrinted {
			t.Fatalf("other after recovery: %+v, %v", res, err)
		}
		checkConsistent(t, e, state)
	})
}

// Neither the OAuth client secret nor any token ever appears in a log line, across captures
// that obtain, use and renew tokens, a refusal and an unknown outcome.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	e := newEnvAt(t, t.TempDir(), log, nil)
	secret := filepath.Join(t.TempDir(), "client-secret")
	os.WriteFile(secret, []byte(secupaytest.ClientSecret+"\n"), 0o600)
	oauth, err := secupay.NewOAuth(secupay.OAuthConfig{BaseURL: e.fake.URL, ClientID: secupaytest.ClientID,
		ClientSecretFile: secret, GrantType: "client_credentials", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.client.set(t, secupay.Config{BaseURL: e.fake.URL, Tokens: oauth, Timeout: 2 * time.Second, Logger: log})
	ctx := context.Background()
	if _, err := e.svc.Capture(ctx, seed); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireToken() // the next call is refused and the token renewed
	if _, err := e.svc.Capture(ctx, "STX_AFTERRENEWAL"); err != nil {
		t.Fatal(err)
	}
	e.fake.Fault(secupaytest.Fault{Op: "start", Status: 400})
	e.svc.Capture(ctx, "STX_REFUSEDONE")
	e.fake.Fault(secupaytest.Fault{Op: "start", Cut: true})
	e.fake.Fault(secupaytest.Fault{Op: "get", Status: 503, Body: "<html>busy</html>"})
	e.svc.Capture(ctx, "STX_UNKNOWNONE")
	if grants := e.fake.Calls().Grants; len(grants) < 2 {
		t.Fatalf("grants %v: the test did not renew the token", grants)
	}

	secrets := append([]string{secupaytest.ClientSecret}, e.fake.IssuedTokens()[1:]...) // [0] is the unused default
	n := 0
	for _, entry := range logs.All() {
		n++
		line := entry.Message + " " + fmt.Sprint(entry.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line contains a secret %q: %s", s, line)
			}
		}
		if strings.Contains(strings.ToLower(line), "bearer ") {
			t.Errorf("log line contains an Authorization header: %s", line)
		}
	}
	if n < 8 {
		t.Fatalf("only %d log lines: the observer did not see the capture", n)
	}
	renewed := false
	for _, entry := range logs.FilterField(zap.Bool("token_renewed", true)).All() {
		renewed = renewed || entry.Message != ""
	}
	if !renewed {
		t.Error("no log line records the token renewal")
	}
	t.Logf("%d log lines checked against %d secrets", n, len(secrets))
}

// TLS verification stays on: a server with a self-signed certificate gets no request at all,
// for the API and for the token endpoint, and a client that disables verification is refused.
func TestTLSVerificationStaysOn(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(secupaytest.SeedAnswer())
	}))
	defer srv.Close()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("some-token"), 0o600)
	c, err := secupay.NewClient(secupay.Config{BaseURL: srv.URL, Tokens: secupay.NewFileToken(tok), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CaptureCash(context.Background(), seed)
	var unknownAuthority x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknownAuthority) {
		t.Fatalf("capture against a self-signed certificate: %v, want a certificate error", err)
	}
	if errors.Is(err, secupay.ErrOutcomeUnknown) {
		t.Errorf("a failed handshake cannot have reached secupay, but the error says outcome unknown: %v", err)
	}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(secupaytest.ClientSecret), 0o600)
	o, err := secupay.NewOAuth(secupay.OAuthConfig{BaseURL: srv.URL, ClientID: "x", ClientSecretFile: secret, GrantType: "client_credentials"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Token(context.Background()); err == nil || !errors.As(err, &unknownAuthority) {
		t.Fatalf("token request against a self-signed certificate: %v, want a certificate error", err)
	}
	hc := srv.Client()
	hc.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
	if _, err := secupay.NewClient(secupay.Config{BaseURL: srv.URL, Tokens: secupay.NewFileToken(tok),
		HTTPClient: hc, Timeout: 5 * time.Second}); err == nil || !strings.Contains(err.Error(), "TLS verification disabled") {
		t.Fatalf("client with InsecureSkipVerify: %v, want refused", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the untrusted server answered %d requests", n)
	}
}
