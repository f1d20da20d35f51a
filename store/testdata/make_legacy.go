//go:build ignore

// make_legacy writes a state directory as ecrd's write-ahead-log release writes it: the
// fixture store/testdata/legacy-30fc41b.tar.gz that the SQLite store's importer is tested on.
//
// It builds ONLY at commit 30fc41b, where internal/wal (wal.Open(root, limit), Log.Commit),
// capture.OpenJournal(*wal.Log, steady.Source) and spool.Open(*wal.Log, dir, printer.Printer,
// spool.Options) have the old signatures — the packages the SQLite store replaces. It drives
// them as the daemon did: capture.Service (Capture, Reprint, PrintLines, Prune) over the
// journal, a spool printing to a file printer (printer.Open("file:...")), the system's steady
// clock (internal/steady), and an in-process secupay that answers with secupaytest's seed.
// Every journal, spool, log and clock file is written by that code itself, except the files
// it puts back behind the log's back to stand for a crash between the log's append and
// applying the change (see lifeTwo).
//
//	git worktree add /tmp/x 30fc41b && cp store/testdata/make_legacy.go /tmp/x/ && cd /tmp/x && go run make_legacy.go OUT
//
// writes the state directory OUT (which must not exist), OUT.tar.gz (paths relative to OUT,
// mtimes kept to the nanosecond in PAX records) and OUT.json (the manifest: what the old code
// reports for every transaction and job after the log is replayed).
//
// The directory is made by two lives of the daemon's parts, each its own process (the program
// runs itself again):
//
//   - life 1, printer ready: captures "pruned" (printed), prunes it into the paid index,
//     captures "captured_printed" (printed); then paper out: captures "captured_deadlife"
//     (receipt queued, its drawer pulse owned by life 1), starts "intent" whose start/cash never
//     answers — and the process dies (no Close): life 1 is a crashed life.
//   - life 2: replays life 1's log; the paper is still out. "refused", "not_captured",
//     "in_doubt", "captured_unspooled" (journaled as an ecrd older than the spool's flag
//     did), a reprint of "captured_printed", a POS "lines" job, "captured_queued"; then a clean
//     stop of the spool (spool.Close hands the queued pulse over: kick_life ""). After it two
//     captures whose start/cash is in doubt ("late", "log_only") commit through the log, and
//     the process dies with their last changes in wal/ but not in the files.
package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/internal/wal"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

const commit = "30fc41b"

// The transactions, by the names the importer's tests use. Ids are "STX_" and 30 capitals and
// digits, as secupay's are; captured_printed is the seed's own id, so its answer is the seed
// answer byte for byte.
var ids = map[string]string{
	"captured_printed":   secupaytest.SeedID,
	"captured_queued":    mkID("QUEUEDHANDEDOVER", 1),
	"captured_deadlife":  mkID("QUEUEDDEADLIFE", 2),
	"captured_unspooled": mkID("CAPTUREDUNSPOOLED", 3),
	"in_doubt":           mkID("INDOUBT", 4),
	"intent":             mkID("INTENT", 5),
	"refused":            mkID("REFUSED", 6),
	"not_captured":       mkID("NOTCAPTURED", 7),
	"pruned":             mkID("PRUNED", 8),
	"late":               mkID("LATEINDOUBT", 9),
	"log_only":           mkID("LOGONLYINDOUBT", 10),
}

// transIDs are secupay's trans_id of the captured ones (the seed's for its own id).
var transIDs = map[string]string{
	"captured_printed":   "29008411",
	"captured_queued":    "29008412",
	"captured_deadlife":  "29008413",
	"captured_unspooled": "29008414",
	"pruned":             "29008415",
}

func mkID(name string, n int) string {
	s := "LGCY" + name
	s += strings.Repeat("0", 30-2-len(s)) + fmt.Sprintf("%02d", n)
	id := "STX_" + s
	if !secupay.ValidID(id) || len(id) != 34 {
		panic("bad id " + id)
	}
	return id
}

// answer is the seed's documented capture answer, as secupay sent it, for transaction name.
func answer(name string) []byte {
	seed := string(secupaytest.SeedAnswer())
	if name == "captured_printed" {
		return []byte(seed)
	}
	seed = strings.Replace(seed, `"id": "`+secupaytest.SeedID+`"`, `"id": "`+ids[name]+`"`, 1)
	seed = strings.Replace(seed, `"trans_id": "29008411"`, `"trans_id": "`+transIDs[name]+`"`, 1)
	return []byte(seed)
}

func main() {
	if life := os.Getenv("MAKE_LEGACY_LIFE"); life != "" {
		state, aux := os.Args[1], os.Args[2]
		var err error
		switch life {
		case "1":
			err = lifeOne(state, aux)
		case "2":
			err = lifeTwo(state, aux)
		default:
			err = fmt.Errorf("unknown life %q", life)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "life %s: %v\n", life, err)
			os.Exit(1)
		}
		// No Close of anything: the process ends as a crash ends it.
		os.Exit(0)
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run make_legacy.go OUT   (at commit "+commit+")")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "make_legacy:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists", out)
	}
	if err := os.MkdirAll(out, 0o750); err != nil {
		return err
	}
	// The printer file and the notes one life leaves the next live outside the state directory.
	aux, err := os.MkdirTemp("", "make-legacy-aux-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(aux)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, life := range []string{"1", "2"} {
		cmd := exec.Command(self, out, aux)
		cmd.Env = append(os.Environ(), "MAKE_LEGACY_LIFE="+life)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("life %s: %w", life, err)
		}
	}
	var notes notes
	if err := readJSON(filepath.Join(aux, "notes.json"), &notes); err != nil {
		return err
	}
	m, err := manifest(out, notes)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := pack(out, out+".tar.gz"); err != nil {
		return err
	}
	fmt.Printf("wrote %s, %s.tar.gz and %s.json\n", out, out, out)
	return nil
}

// notes is what the lives tell the manifest that only they know.
type notes struct {
	Life1       string `json:"life1"`          // the crashed life's name (kick_life of its jobs)
	LinesJob    string `json:"lines_job"`      // the POS lines job's id (random)
	Clock       string `json:"steady_clock"`   // steady-clock.json as the files hold it
	ClockLogged string `json:"steady_clock_w"` // its last committed content, in the log only
}

func writeNotes(aux string, f func(*notes)) error {
	p := filepath.Join(aux, "notes.json")
	var n notes
	if err := readJSON(p, &n); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f(&n)
	b, _ := json.Marshal(n)
	return os.WriteFile(p, b, 0o644)
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// till is one life's parts, wired as cmd/ecrd's serve wires them.
type till struct {
	log    *wal.Log
	lock   *os.File
	j      *capture.Journal
	sp     *spool.Spool
	svc    *capture.Service
	fake   *fakeSecupay
	status string // the file printer's status file
	stop   func()
}

func openTill(state, aux string, keep time.Duration) (*till, error) {
	t := &till{status: filepath.Join(aux, "printer.bin.status")}
	// As lockStateDir does: an empty "lock" file the daemon flocks.
	lock, err := os.OpenFile(filepath.Join(state, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, err
	}
	t.lock = lock
	if t.log, err = wal.Open(state, 0); err != nil {
		return nil, err
	}
	if errs := t.log.ReplayErrors(); len(errs) > 0 {
		return nil, fmt.Errorf("replay: %v", errs)
	}
	if t.j, err = capture.OpenJournal(t.log, nil); err != nil {
		return nil, err
	}
	p, err := printer.Open("file:" + filepath.Join(aux, "printer.bin"))
	if err != nil {
		return nil, err
	}
	if t.sp, err = spool.Open(t.log, "spool", p, spool.Options{Poll: 10 * time.Millisecond, Logger: zap.NewNop()}); err != nil {
		return nil, err
	}
	pin := 0
	t.fake = &fakeSecupay{}
	t.svc = capture.New(capture.Config{Journal: t.j, Secupay: t.fake, Spool: t.sp, DrawerPin: &pin,
		PrintWait: 5 * time.Second, KeepFinished: keep, Logger: zap.NewNop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { t.sp.Run(ctx); close(done) }()
	t.stop = func() { cancel(); <-done }
	return t, nil
}

func (t *till) paper(state string) error {
	if state == "online" {
		return os.Remove(t.status)
	}
	return os.WriteFile(t.status, []byte(state+"\n"), 0o644)
}

func (t *till) capture(name string, want string) (*capture.Result, error) {
	res, err := t.svc.Capture(context.Background(), ids[name])
	got := "captured"
	var refused *capture.RefusedError
	switch {
	case errors.Is(err, capture.ErrOutcomeUnknown):
		got = "in_doubt"
	case errors.As(err, &refused):
		got = "refused"
	case errors.Is(err, capture.ErrUnreachable):
		got = "not_captured"
	case err != nil:
		return nil, fmt.Errorf("capture %s: %w", name, err)
	}
	if got != want {
		return nil, fmt.Errorf("capture %s: %s, want %s (%v)", name, got, want, err)
	}
	fmt.Printf("  %-19s %s: %s", name, ids[name], got)
	if res != nil {
		fmt.Printf(", job %s %s", res.Job.ID, res.Job.State)
	}
	fmt.Println()
	return res, nil
}

func lifeOne(state, aux string) error {
	fmt.Println("life 1 (ends in a crash)")
	t, err := openTill(state, aux, 100*time.Millisecond)
	if err != nil {
		return err
	}
	if res, err := t.capture("pruned", "captured"); err != nil {
		return err
	} else if res.Job.State != capture.JobPrinted {
		return fmt.Errorf("pruned: receipt %s", res.Job.State)
	}
	// KeepFinished is 100 ms in this life: the prune takes the one finished record there is.
	time.Sleep(300 * time.Millisecond)
	t.svc.Prune()
	if r, err := t.j.Get(ids["pruned"]); err != nil || !r.Pruned {
		return fmt.Errorf("pruned: not pruned (%v)", err)
	}
	if res, err := t.capture("captured_printed", "captured"); err != nil {
		return err
	} else if res.Job.State != capture.JobPrinted {
		return fmt.Errorf("captured_printed: receipt %s", res.Job.State)
	}
	// Let the worker send captured_printed's drawer pulse (after the job is marked printed).
	time.Sleep(100 * time.Millisecond)
	if err := t.paper("paper_out"); err != nil {
		return err
	}
	if res, err := t.capture("captured_deadlife", "captured"); err != nil {
		return err
	} else if res.Job.State != capture.JobQueued {
		return fmt.Errorf("captured_deadlife: receipt %s", res.Job.State)
	}
	// Whose pulse it is: the name of this life, as the spool wrote it.
	var q struct {
		KickLife string `json:"kick_life"`
	}
	if err := readJSON(filepath.Join(state, "spool/queue", ids["captured_deadlife"]+".receipt.json"), &q); err != nil {
		return err
	}
	if q.KickLife == "" {
		return errors.New("captured_deadlife: no kick_life")
	}
	if err := writeNotes(aux, func(n *notes) { n.Life1 = q.KickLife }); err != nil {
		return err
	}
	// intent: start/cash sent, and the answer never comes before the crash.
	t.fake.hang = make(chan struct{})
	go t.svc.Capture(context.Background(), ids["intent"])
	select {
	case <-t.fake.hang:
	case <-time.After(10 * time.Second):
		return errors.New("intent: start/cash never sent")
	}
	fmt.Printf("  %-19s %s: start/cash in flight\n", "intent", ids["intent"])
	fmt.Println("  crash")
	return nil
}

func lifeTwo(state, aux string) error {
	fmt.Println("life 2 (clean stop of the spool, then a crash after the log's append)")
	t, err := openTill(state, aux, 0)
	if err != nil {
		return err
	}
	for _, c := range [][2]string{{"refused", "refused"}, {"not_captured", "not_captured"}, {"in_doubt", "in_doubt"}} {
		if _, err := t.capture(c[0], c[1]); err != nil {
			return err
		}
	}
	// A captured record without its receipt in the spool, as an ecrd before the spool's
	// flag journaled it: the journal's own write, through the log.
	clock := t.j.Clock()
	now := clock.Wall().UTC()
	rec := &capture.Record{TransactionID: ids["captured_unspooled"], Phase: capture.PhaseCaptured, Attempts: 1,
		Sent: now, SentAt: clock.Now(), Clock: clock.Epoch(), TransID: transIDs["captured_unspooled"],
		Answer: answer("captured_unspooled")}
	if err := t.j.PutFlushed(rec); err != nil {
		return err
	}
	fmt.Printf("  %-19s %s: captured, not spooled\n", "captured_unspooled", rec.TransactionID)
	res, err := t.svc.Reprint(context.Background(), ids["captured_printed"])
	if err != nil {
		return err
	}
	fmt.Printf("  %-19s %s: job %s %s\n", "reprint", ids["captured_printed"], res.Job.ID, res.Job.State)
	lines, err := receipt.DecodeLines([]byte(`[{"type":"textline","value":{"text":"Tisch 4","decoration":["important"]}},
		{"type":"name-value","value":{"name":"2 x Kaffee","value":"5,80 EUR","decoration":[]}}]`))
	if err != nil {
		return err
	}
	job, err := t.svc.PrintLines(context.Background(), lines)
	if err != nil {
		return err
	}
	fmt.Printf("  %-19s job %s %s\n", "lines", job.ID, job.State)
	if err := writeNotes(aux, func(n *notes) { n.LinesJob = job.ID }); err != nil {
		return err
	}
	if res, err := t.capture("captured_queued", "captured"); err != nil {
		return err
	} else if res.Job.State != capture.JobQueued {
		return fmt.Errorf("captured_queued: receipt %s", res.Job.State)
	}
	// The clean stop: the worker stops, and the spool hands the drawer pulse it still owes
	// (captured_queued's) to the next life.
	t.stop()
	if err := t.sp.Close(); err != nil {
		return err
	}
	fmt.Println("  spool closed (pulses handed over)")

	// Two captures that outlive the spool's stop (as one still in flight when the API's
	// shutdown gives up on it does). Each commits its intent (flushed) and then its doubt
	// (not flushed). The process dies after the log took the last three changes — late's
	// doubt, log_only's intent and doubt — and before the files did: the files are put back
	// as they were after late's intent, behind the log's back.
	t.fake.onLate = func() error { // called by start/cash of late: its intent is in the files
		var err error
		t.fake.lateFile, err = snapshot(filepath.Join(state, "journal", ids["late"]+".json"))
		if err == nil {
			t.fake.clockFile, err = snapshot(filepath.Join(state, "steady-clock.json"))
		}
		return err
	}
	for _, name := range []string{"late", "log_only"} {
		if _, err := t.capture(name, "in_doubt"); err != nil {
			return err
		}
	}
	if t.fake.lateFile == nil || t.fake.clockFile == nil {
		return errors.New("late: no snapshot")
	}
	clockNow, err := os.ReadFile(filepath.Join(state, "steady-clock.json"))
	if err != nil {
		return err
	}
	if err := t.fake.lateFile.restore(); err != nil {
		return err
	}
	if err := t.fake.clockFile.restore(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(state, "journal", ids["log_only"]+".json")); err != nil {
		return err
	}
	if err := writeNotes(aux, func(n *notes) {
		n.Clock = string(t.fake.clockFile.data)
		n.ClockLogged = string(clockNow)
	}); err != nil {
		return err
	}
	fmt.Println("  files put back behind the log; crash")
	return nil
}

// file is a file's content and times, to put back.
type file struct {
	path string
	data []byte
	mod  time.Time
}

func snapshot(p string) (*file, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return &file{path: p, data: b, mod: fi.ModTime()}, nil
}

// restore writes the file back as the log's apply step writes one (a temporary name renamed
// over it, mode 0640), with its old times.
func (f *file) restore() error {
	tmp := filepath.Join(filepath.Dir(f.path), "."+filepath.Base(f.path)+".restore.tmp")
	if err := os.WriteFile(tmp, f.data, 0o640); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return err
	}
	return os.Chtimes(f.path, f.mod, f.mod)
}

// fakeSecupay answers as secupay did for each transaction.
type fakeSecupay struct {
	hang chan struct{} // closed when intent's start/cash is sent; it never answers
	// late's hook and what it kept
	onLate              func() error
	lateFile, clockFile *file
}

const base = "https://connect.secuconnect.com/api/v2/Smart/Transactions/"

func nameOf(id string) string {
	for n, v := range ids {
		if v == id {
			return n
		}
	}
	return ""
}

func decode(b []byte) (*secupay.Transaction, error) {
	var tx secupay.Transaction
	if err := json.Unmarshal(b, &tx); err != nil {
		return nil, err
	}
	return &tx, nil
}

func (f *fakeSecupay) CaptureCash(ctx context.Context, id string) (*secupay.Transaction, error) {
	switch name := nameOf(id); name {
	case "captured_printed", "captured_queued", "captured_deadlife", "pruned":
		return decode(answer(name))
	case "intent":
		close(f.hang)
		select {} // the answer never comes: the process dies first
	case "refused":
		return nil, &secupay.Error{Op: "capture", TransactionID: id, HTTPStatus: 400, Status: "error",
			Err: "ProductBadRequestException", ErrorUser: "Die Transaktion kann nicht abgeschlossen werden.",
			ErrorDetails: "Smart transaction is not in a state to be started", Code: "0",
			SupportID: "4b3c2a1908f7e6d5c4b3a29180f7e6d5"}
	case "not_captured":
		return nil, fmt.Errorf("secupay: capture %s: %w: %w", id, secupay.ErrNotSent,
			errors.New(`Post "`+base+id+`/start/cash": dial tcp: lookup connect.secuconnect.com: no such host`))
	case "late":
		if err := f.onLate(); err != nil {
			return nil, err
		}
		fallthrough
	case "in_doubt", "log_only":
		return nil, fmt.Errorf("secupay: capture %s: %w: %w", id, secupay.ErrOutcomeUnknown,
			errors.New(`Post "`+base+id+`/start/cash": context deadline exceeded`))
	}
	return nil, fmt.Errorf("unexpected start/cash %s", id)
}

func (f *fakeSecupay) Transaction(ctx context.Context, id string) (*secupay.Transaction, error) {
	switch nameOf(id) {
	case "refused":
		// The refusal proves itself: the transaction reads back as still capturable.
		return decode([]byte(`{"object":"smart.transactions","id":"` + id + `","status":"created","trans_id":0,"payment_method":""}`))
	case "in_doubt", "late", "log_only":
		return nil, fmt.Errorf("secupay: get %s: %w: %w", id, secupay.ErrOutcomeUnknown,
			errors.New(`Get "`+base+id+`": context deadline exceeded`))
	}
	return nil, fmt.Errorf("unexpected read-back %s", id)
}

// The manifest: what the old code reports after the log is replayed (wal.Open), and where it
// lives in the files.

type Manifest struct {
	Fixture      string            `json:"fixture"`
	Commit       string            `json:"commit"`
	MadeBy       string            `json:"made_by"`
	About        map[string]string `json:"about"`
	Names        map[string]string `json:"names"` // name -> transaction id
	Transactions []Transaction     `json:"transactions"`
	Jobs         Jobs              `json:"jobs"`
	LogOnly      []LogOnly         `json:"log_only"`
	Wal          WalInfo           `json:"wal"`
	SteadyClock  ClockInfo         `json:"steady_clock"`
	Paid         []PaidBucket      `json:"paid_index"`
}

type Transaction struct {
	Name          string `json:"name"`
	ID            string `json:"transaction_id"`
	Phase         string `json:"phase"`
	Attempts      int    `json:"attempts"`
	Spooled       bool   `json:"spooled"`
	Pruned        bool   `json:"pruned"`
	Reprints      int    `json:"reprints"`
	Finished      bool   `json:"finished"` // not in journal/ (All does not return it)
	File          string `json:"file"`     // where its record lives once the log is replayed
	TransID       string `json:"trans_id,omitempty"`
	PaymentMethod string `json:"payment_method,omitempty"` // the answer's, or the paid line's when pruned
	HasAnswer     bool   `json:"answer"`
	Refusal       bool   `json:"refusal"`
	Doubt         bool   `json:"doubt"`
	Sent          bool   `json:"sent"`     // sent, sent_steady and steady_clock set
	LogOnly       bool   `json:"log_only"` // its latest change is in wal/ only
}

type Job struct {
	ID            string `json:"id"`
	TransactionID string `json:"transaction_id,omitempty"`
	Kind          string `json:"kind"`
	Kick          bool   `json:"kick"`
	// KickLife: "" (no pulse), "empty" (handed over by a clean stop), "other" (a dead life's)
	KickLife      string `json:"kick_life"`
	KickLifeValue string `json:"kick_life_value,omitempty"`
	Seq           uint64 `json:"seq"`
}

type Jobs struct {
	Queued  []Job `json:"queued"`  // oldest first (seq)
	Printed []Job `json:"printed"` // spool/done
}

type LogOnly struct {
	Name     string `json:"name"`
	ID       string `json:"transaction_id"`
	OnDisk   string `json:"on_disk"`  // what the files say without the replay
	Replayed string `json:"replayed"` // what they say after it
	File     string `json:"file"`
}

type WalInfo struct {
	Logs            []string `json:"logs"`
	Frames          int      `json:"frames"`
	NotApplied      int      `json:"frames_not_applied"` // the last ones
	NotAppliedPaths []string `json:"paths_not_applied"`
}

type ClockInfo struct {
	File     string `json:"file"`
	OnDisk   string `json:"on_disk"`
	Replayed string `json:"replayed"`
}

type PaidBucket struct {
	File string   `json:"file"`
	IDs  []string `json:"transaction_ids"`
}

func paidRel(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("journal/paid/%03x.jsonl", h.Sum32()%4096)
}

var about = map[string]string{
	"transactions":                "what capture.Journal.Get reports at commit " + commit + " once wal.Open has replayed the log",
	"transactions.finished":       "not returned by Journal.All: its record is in journal/finished/ or, pruned, only a line of the paid index",
	"transactions.file":           "where the record is once the log is replayed",
	"transactions.payment_method": "the stored answer's, or the paid line's for a pruned record",
	"transactions.sent":           "sent, sent_steady and steady_clock are set",
	"transactions.log_only":       "its latest change is in wal/ only: the files hold an older state (see log_only)",
	"jobs.queued":                 "spool/queue after the replay, oldest first (seq); spool.Open's Pending in that order",
	"jobs.kick_life":              "for a job with a drawer pulse: empty = handed over by a clean stop (kick_life absent from the file), other = a crashed life's name (kick_life_value); \"\" = no pulse",
	"jobs.printed":                "spool/done: done records, without data or pulse",
	"log_only":                    "transactions whose latest change is committed in wal/ and not applied to the files",
	"wal":                         "frames of the newest log, the last frames_not_applied of which the files have not taken",
	"steady_clock":                "steady-clock.json as the files hold it, and as the replay leaves it",
}

func manifest(state string, n notes) (*Manifest, error) {
	m := &Manifest{Fixture: "legacy-" + commit + ".tar.gz", Commit: commit,
		MadeBy: "store/testdata/make_legacy.go, run at commit " + commit, Names: ids, About: about}
	active := func(id string) string { return "journal/" + id + ".json" }
	finished := func(id string) string { return "journal/finished/" + id + ".json" }
	tx := func(name, phase string, attempts int, spooled, fin bool, file string) Transaction {
		t := Transaction{Name: name, ID: ids[name], Phase: phase, Attempts: attempts, Spooled: spooled,
			Finished: fin, File: file, TransID: transIDs[name]}
		switch phase {
		case "captured":
			t.PaymentMethod, t.HasAnswer = "cash", true
			t.Sent = true
		case "refused", "not_captured":
			t.Refusal, t.Sent = true, true
		case "in_doubt":
			t.Doubt, t.Sent = true, true
		case "intent":
			t.Sent = true
		}
		return t
	}
	pr := tx("captured_printed", "captured", 1, true, true, finished(ids["captured_printed"]))
	pr.Reprints = 1
	pruned := tx("pruned", "captured", 0, true, true, paidRel(ids["pruned"]))
	pruned.Pruned, pruned.HasAnswer, pruned.Sent = true, false, false
	late := tx("late", "in_doubt", 1, false, false, active(ids["late"]))
	late.LogOnly = true
	logOnly := tx("log_only", "in_doubt", 1, false, false, active(ids["log_only"]))
	logOnly.LogOnly = true
	m.Transactions = []Transaction{
		pr,
		tx("captured_queued", "captured", 1, true, true, finished(ids["captured_queued"])),
		tx("captured_deadlife", "captured", 1, true, true, finished(ids["captured_deadlife"])),
		tx("captured_unspooled", "captured", 1, false, false, active(ids["captured_unspooled"])),
		tx("in_doubt", "in_doubt", 1, false, false, active(ids["in_doubt"])),
		tx("intent", "intent", 1, false, false, active(ids["intent"])),
		tx("refused", "refused", 1, false, true, finished(ids["refused"])),
		tx("not_captured", "not_captured", 1, false, true, finished(ids["not_captured"])),
		pruned, late, logOnly,
	}

	// The jobs, from the spool's files (written by the old code; the generator only reads).
	readJobs := func(dir string) ([]Job, error) {
		ents, err := os.ReadDir(filepath.Join(state, dir))
		if err != nil {
			return nil, err
		}
		var out []Job
		for _, e := range ents {
			var r struct {
				ID            string `json:"id"`
				TransactionID string `json:"transaction_id"`
				Kind          string `json:"kind"`
				Kick          []byte `json:"kick"`
				KickLife      string `json:"kick_life"`
				Seq           uint64 `json:"seq"`
			}
			if err := readJSON(filepath.Join(state, dir, e.Name()), &r); err != nil {
				return nil, err
			}
			j := Job{ID: r.ID, TransactionID: r.TransactionID, Kind: r.Kind, Kick: len(r.Kick) > 0, Seq: r.Seq}
			if j.Kick {
				j.KickLife, j.KickLifeValue = "empty", r.KickLife
				if r.KickLife != "" {
					j.KickLife = "other"
				}
			}
			out = append(out, j)
		}
		sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
		return out, nil
	}
	var err error
	if m.Jobs.Queued, err = readJobs("spool/queue"); err != nil {
		return nil, err
	}
	if m.Jobs.Printed, err = readJobs("spool/done"); err != nil {
		return nil, err
	}
	want := map[string]bool{
		ids["captured_deadlife"] + ".receipt": true, ids["captured_printed"] + ".reprint-1": true,
		n.LinesJob: true, ids["captured_queued"] + ".receipt": true,
	}
	for _, j := range m.Jobs.Queued {
		if !want[j.ID] {
			return nil, fmt.Errorf("unexpected queued job %s", j.ID)
		}
		delete(want, j.ID)
		if j.ID == ids["captured_deadlife"]+".receipt" && j.KickLifeValue != n.Life1 {
			return nil, fmt.Errorf("deadlife's kick_life %q, want life 1's %q", j.KickLifeValue, n.Life1)
		}
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("queued jobs missing: %v", want)
	}

	m.LogOnly = []LogOnly{
		{Name: "late", ID: ids["late"], File: active(ids["late"]), OnDisk: "intent (attempts 1)", Replayed: "in_doubt (attempts 1, doubt set)"},
		{Name: "log_only", ID: ids["log_only"], File: active(ids["log_only"]), OnDisk: "absent", Replayed: "in_doubt (attempts 1, doubt set)"},
	}
	logs, _ := filepath.Glob(filepath.Join(state, "wal", "*.log"))
	for _, l := range logs {
		m.Wal.Logs = append(m.Wal.Logs, "wal/"+filepath.Base(l))
	}
	if len(logs) > 0 {
		b, err := os.ReadFile(logs[0])
		if err != nil {
			return nil, err
		}
		if m.Wal.Frames, err = countFrames(b); err != nil {
			return nil, fmt.Errorf("%s: %w", logs[0], err)
		}
	}
	m.Wal.NotApplied = 3
	m.Wal.NotAppliedPaths = []string{active(ids["late"]), finished(ids["late"]), active(ids["log_only"]),
		finished(ids["log_only"]), "steady-clock.json"}
	m.SteadyClock = ClockInfo{File: "steady-clock.json", OnDisk: n.Clock, Replayed: n.ClockLogged}
	m.Paid = []PaidBucket{{File: paidRel(ids["pruned"]), IDs: []string{ids["pruned"]}}}
	return m, nil
}

// countFrames counts the whole frames of a log: magic 0xEC4D0A1E, payload length and the
// payload's CRC-32C (each a little-endian uint32), then the payload, a JSON array of ops.
func countFrames(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if len(b) < 12 || binary.LittleEndian.Uint32(b) != 0xEC4D0A1E {
			return n, errors.New("not a frame")
		}
		size := int(binary.LittleEndian.Uint32(b[4:]))
		if len(b) < 12+size || crc32.Checksum(b[12:12+size], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[8:]) {
			return n, errors.New("torn or corrupt frame")
		}
		b = b[12+size:]
		n++
	}
	return n, nil
}

// pack writes dir as a gzipped tar, paths relative to dir, in name order, with each file's
// mode and modification time (to the nanosecond, PAX).
func pack(dir, out string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		default:
			return fmt.Errorf("%s: not a file or directory", p)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
