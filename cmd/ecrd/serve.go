package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/api"
	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"github.com/ecrd-pos/ecrd/internal/journald"
	"github.com/ecrd-pos/ecrd/monitor"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/spool"
	"github.com/ecrd-pos/ecrd/store"
)

// serveConfig is every setting of the daemon. Each is a flag and an ECRD_ variable.
// Secrets are never settings: only the paths of files that hold them.
type serveConfig struct {
	socket, stateDir, secupayURL, tokenFile    string
	oauthClientID, oauthSecretFile, oauthGrant string
	oauthDeviceUUID                            string
	printerURI                                 string
	layout                                     layoutFlags
	drawer                                     string
	printWait, secupayTimeout, poll            time.Duration
	resolveEvery, journalKeep, inDoubtWait     time.Duration
	printTimeout                               time.Duration
	logLevel, logFormat                        string
	fleetFlags
	browser browserFlags // --http-listen: the API for a POS in a browser (httplisten.go)
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", "/run/ecrd/ecrd.sock", "Unix socket of the local API (systemd socket activation takes precedence)")
	fs.StringVar(&c.stateDir, "state-dir", "/var/lib/ecrd", "directory for the journal and the print spool")
	fs.StringVar(&c.secupayURL, "secupay-url", "", "secupay base URL without /api/v2, e.g. https://connect-testing.secuconnect.com")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding a static bearer token (mode 0600 or stricter)")
	fs.StringVar(&c.oauthClientID, "oauth-client-id", "", "OAuth client id (instead of --token-file)")
	fs.StringVar(&c.oauthSecretFile, "oauth-client-secret-file", "", "file holding the OAuth client secret; a bare name is looked up in $CREDENTIALS_DIRECTORY")
	fs.StringVar(&c.oauthGrant, "oauth-grant", "device", "OAuth grant: device or client_credentials")
	fs.StringVar(&c.oauthDeviceUUID, "oauth-device-uuid", "", "device uuid for the device grant, e.g. /vendor/acme/serial/1234")
	fs.StringVar(&c.printerURI, "printer", "", "printer URI: file:/path, lp:/dev/usb/lp0, serial:/dev/ttyUSB0?baud=19200, tcp:host:9100, usb:VID:PID or usb:")
	c.layout.register(fs)
	fs.StringVar(&c.drawer, "drawer-kick", "off", "open the cash drawer with a cash capture's receipt: off, 0 (pin 2) or 1 (pin 5)")
	fs.DurationVar(&c.printWait, "print-wait", 10*time.Second, "how long a capture waits for its receipt to print before answering queued")
	fs.DurationVar(&c.secupayTimeout, "secupay-timeout", 30*time.Second, "timeout of one secupay call")
	fs.DurationVar(&c.poll, "printer-poll", 2*time.Second, "how often a waiting job asks the printer again")
	fs.DurationVar(&c.resolveEvery, "resolve-interval", time.Minute, "how often captures with a lost answer are read back from secupay")
	fs.DurationVar(&c.inDoubtWait, "in-doubt-wait", capture.DefaultInDoubtWait, "after a start/cash whose answer was lost, how long secupay may still be working on it: no other start/cash is sent for that transaction before a read-back this long after the call still shows it not captured")
	fs.DurationVar(&c.journalKeep, "journal-keep", 90*24*time.Hour, "how long finished captures stay in the journal (pruned at start; 0 = forever)")
	fs.DurationVar(&c.printTimeout, "print-timeout", 2*time.Minute, "longest time one receipt may take to print (a long receipt on a 9600 baud line); a printer stuck longer stops the watchdog")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "auto", "auto (the journal's native protocol under systemd, else json), json, journald or console")
	c.fleetFlags.register(fs)
	c.browser.register(fs)
}

// serveUsage writes every setting of `ecrd serve` with its ECRD_ variable and default,
// generated from the flag set so that the help (and the man page made from it) can never
// miss a variable.
func serveUsage(w io.Writer) {
	fs := flag.NewFlagSet("ecrd serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	fmt.Fprint(w, "Usage: ecrd serve [flags]\n\n"+
		"Every flag is also an environment variable (systemd reads them from /etc/ecrd/ecrd.env);\n"+
		"a flag on the command line wins. Secrets are never settings, only paths to files.\n"+
		"A bare --token-file or --oauth-client-secret-file name is looked up in $CREDENTIALS_DIRECTORY.\n\n"+
		"ecrd serve --check [--env-file PATH] [flags] checks a configuration without starting:\n"+
		"one line per finding, exit 0, or 2 when the daemon would refuse to start. It reads the\n"+
		"settings no flag or variable sets from --env-file (default "+defaultEnvFile+"), and outside\n"+
		"the unit (no $CREDENTIALS_DIRECTORY) looks a bare credential name up beside that file, where\n"+
		"the unit's LoadCredential= takes it from: sudo ecrd serve --check checks what the next\n"+
		"systemctl restart ecrd would use.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  --%s, %s%s\n\t%s\n", f.Name, envName(f.Name), def, f.Usage)
	})
}

func cmdServe(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cfg serveConfig
	cfg.register(fs)
	fs.Usage = func() { serveUsage(stderr) }
	args, check := withoutCheckFlag(args)
	// Only the check reads the env file itself: the daemon gets its settings from systemd
	// (EnvironmentFile=), and a second source there could disagree with what the unit says.
	var envFile *string
	if check {
		envFile = fs.String("env-file", defaultEnvFile, "with --check: the daemon's settings, read for every setting no flag or environment variable sets")
	}
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q (secrets are read from files, never from the command line)", errUsage, fs.Arg(0))
	}
	if check {
		read, err := serveSettingsFromFile(fs, *envFile)
		if err != nil {
			return err
		}
		return checkServe(asTheUnit(cfg, filepath.Dir(*envFile)), read, stdout)
	}
	again, hugePagesErr := withoutHugePages() // executes the daemon again, unless already done
	runtimeForATill()
	log, err := newLogger(cfg.logLevel, cfg.logFormat, stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case hugePagesErr != nil:
		log.Warn("could not execute the daemon again without transparent huge pages; going on with them (more memory)", zap.Error(hugePagesErr))
	case again:
		log.Debug("executed again without transparent huge pages")
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := startDaemon(cfg, log, nil)
	if err != nil {
		// The reason in the message itself: `systemctl status ecrd` and `journalctl -u ecrd`
		// show MESSAGE only, and a technician reads them first. ERROR= keeps it for filters.
		log.Error("ecrd not started: "+strings.TrimPrefix(err.Error(), errUsage.Error()+": "), zap.Error(err))
		return logged{err} // the log line says it; the exit status still tells a usage error
	}
	daemon.SdNotify(false, daemon.SdNotifyReady)
	log.Info("ecrd serving", zap.String("socket", d.socketDesc), zap.String("printer", cfg.printerURI),
		zap.String("state_dir", cfg.stateDir), zap.String("version", versionString()), zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
	var fatal error
	select {
	case <-ctx.Done():
	case fatal = <-d.fatal:
		// A journal that cannot be trusted must not answer whether a transaction was paid:
		// stop. A damaged database stays stopped until a technician has recovered it
		// (store.DamagedSuffix); after a failed write the next start recovers from the disk.
		msg := "ecrd stopping: the state database is damaged; see docs/operations.md, \"The state database is damaged\""
		if errors.Is(fatal, store.ErrDiskFailed) {
			msg = "ecrd stopping: a write to the state directory's disk failed; the next start recovers the database from the disk"
		}
		log.Error(msg, zap.Error(fatal))
	}
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	log.Info("ecrd stopping: finishing the job on the paper and requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.shutdown(sctx); err != nil || fatal == nil {
		return err
	}
	return logged{fatal}
}

// newLogger logs to w as JSON or console text, or to the journal in its native protocol
// ("journald", or "auto" when systemd connected stderr to the journal) so that journalctl
// can filter by priority and by field (docs/operations.md, "Logs").
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.Lock(zapcore.AddSync(w)), lvl)
	switch format {
	case "auto":
		if !journald.Available() {
			return zap.New(jsonCore), nil
		}
		fallthrough
	case "journald":
		// JSON on stderr takes what the journal refuses: stderr is the journal's stream too.
		return zap.New(journald.NewCore(lvl, journald.Options{Fallback: jsonCore}), zap.AddCaller()), nil
	case "json":
		return zap.New(jsonCore), nil
	case "console":
		return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(ec), zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
	}
	return nil, fmt.Errorf("--log-format must be auto, json, journald or console, not %q", format)
}

// tillGOGC is the garbage collector's target for the daemon unless GOGC says otherwise. The
// daemon's live heap is about 1.5 MiB, under Go's minimum heap goal (4 MiB at GOGC=100,
// scaled by GOGC), so the default lets the heap grow to twice what it needs: at 50 the goal is
// 2 MiB and the daemon stays about 2 MiB smaller after 10,000 captures (16.0 against 17.9 MiB
// VmRSS, make soak), at no cost a till's rate of captures could notice. Not GOMEMLIMIT: a limit
// near the live heap makes the collector run without pause.
const tillGOGC = 50

// tillProcs is how many goroutines run Go code at once (GOMAXPROCS) in the daemon unless
// GOMAXPROCS says otherwise. ecrd serves one till: a capture at a time, waiting on secupay,
// the disk and the printer, hardly ever on a CPU, and a goroutine blocked in a flush leaves its
// P to the others. Every P costs memory the runtime keeps for good — its allocation caches and
// the collector's per-P buffers, the threads and span lists its sweeps touch — so the default
// of one P per core made the daemon bigger on a bigger till. With one P it sits 0.4 MiB lower
// idle after its first prune on this 2-core machine (3.7 against 4.0–4.1 MiB anonymous, make
// measure-storage), and a capture with 10 ms flushes took as long (33.7–33.9 against
// 34.4–34.8 ms added, median, file printer).
const tillProcs = 1

// runtimeForATill sets the collector's target and the Ps, each unless its variable is set.
func runtimeForATill() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(tillGOGC)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(tillProcs)
	}
}

// returnMemory hands the heap's free pages back to the kernel after work the daemon does
// rarely and in a burst — replaying the log and resuming at start, pruning the history —
// whose garbage would otherwise stay resident: an idle daemon allocates nothing, so no
// collection runs that would let the runtime's scavenger release it. Measured: 17.3 MiB idle
// after the first prune of a 100,000-capture history, 11.0 before it (make measure-storage,
// TestMeasureIdleAfterPrune). One forced collection of a heap of a few MiB: milliseconds.
func returnMemory() { debug.FreeOSMemory() }

// runningDaemon is ecrd's parts, started: spool worker, API server.
type runningDaemon struct {
	log        *zap.Logger
	srv        *http.Server
	metricsSrv *http.Server // nil unless --metrics-listen
	browserSrv *http.Server // nil unless --http-listen
	spool      *spool.Spool
	printer    printer.Printer
	store      *store.Store
	// fatal carries the error that must stop the daemon: the state database found damaged.
	fatal      chan error
	lock       *os.File
	socketDesc string
	monitor    *monitor.Monitor
	apiAddr    net.Addr
	stopping   atomic.Bool
	cancelLoop context.CancelFunc

	cancelWorker context.CancelFunc
	wg           sync.WaitGroup
}

// startDaemon opens everything cfg names and starts serving on ln (nil: systemd's socket
// if activated, else cfg.socket).
func startDaemon(cfg serveConfig, log *zap.Logger, ln net.Listener) (*runningDaemon, error) {
	drawerPin, err := cfg.check()
	if err != nil {
		return nil, err
	}
	// What `ecrd serve --check` calls an error stops the start: a file printer in a directory
	// that does not exist would take money for receipts that can never print.
	for _, p := range printer.Check(cfg.printerURI) {
		if p.Fatal {
			return nil, fmt.Errorf("%w: --printer (ECRD_PRINTER): %v", errUsage, p.Err)
		}
		log.Warn("printer not ready to open now", zap.Error(p.Err))
	}
	if err := os.MkdirAll(cfg.stateDir, 0o750); err != nil {
		return nil, err
	}
	lock, err := lockStateDir(cfg.stateDir)
	if err != nil {
		return nil, err
	}
	// Whatever is opened below is closed again, newest first, if the daemon does not start.
	var undo []func() error
	ok := false
	defer func() {
		for i := len(undo) - 1; i >= 0 && !ok; i-- {
			undo[i]()
		}
	}()
	undo = append(undo, lock.Close)

	tokens, pending, err := tokenSource(cfg, log)
	if err != nil {
		return nil, err
	}
	// The monitor is made once the parts it reads exist; the hooks below reach it through mon,
	// which is set before any goroutine that could call them starts.
	var mon *monitor.Monitor
	client, err := secupay.NewClient(secupay.Config{BaseURL: cfg.secupayURL, Tokens: tokens, Timeout: cfg.secupayTimeout, Logger: log,
		Observe: func(op string, status int, d time.Duration, err error) { mon.ObserveSecupay(op, status, d, err) }})
	if err != nil {
		return nil, fmt.Errorf("%w: --secupay-url (ECRD_SECUPAY_URL): %v", errUsage, err)
	}
	fatal := make(chan error, 1)
	st, journal, err := openState(cfg.stateDir, log)
	if err != nil {
		return nil, err
	}
	undo = append(undo, st.Close)
	st.OnCorrupt = func(err error) {
		select {
		case fatal <- err:
		default:
		}
	}
	st.OnDiskFailed = st.OnCorrupt
	p, opt, model, err := openPrinter(cfg, log)
	if err != nil {
		return nil, err
	}
	undo = append(undo, p.Close)
	sp, err := spool.Open(st, p, spool.Options{Poll: cfg.poll, Logger: log,
		PrintTimeout: cfg.printTimeout, Observe: func(in spool.Info, err error) { mon.ObserveJob(in, err) },
		Pruned: returnMemory})
	if err != nil {
		return nil, err
	}
	svc := capture.New(capture.Config{Journal: journal, Secupay: client, Spool: sp, Render: opt,
		DrawerPin: drawerPin, PrintWait: cfg.printWait, InDoubtWait: cfg.inDoubtWait, KeepFinished: cfg.journalKeep, Logger: log})

	ln, desc, err := listenAPI(cfg, ln)
	if err != nil {
		return nil, err
	}
	undo = append(undo, ln.Close)
	var tokenExpires func() time.Time
	if o, ok := tokens.(*secupay.OAuth); ok {
		tokenExpires = o.TokenExpires
	}
	mon = monitor.New(monitor.Config{Version: versionString(), Spool: sp, Unfinished: svc.Unfinished, Alive: sp.Alive,
		TokenExpires: tokenExpires, Model: func() string { return model.model }, ModelSource: func() string { return model.source },
		Characters:         characterCounts(opt.Counters),
		SecupayEnvironment: secupay.Environment(cfg.secupayURL), Logger: log,
		PrinterGrace: cfg.printerGrace, UnfinishedLimit: cfg.unfinishedLimit})
	// One observer per process: a second daemon in the same process (tests) takes it over.
	atomicfile.Observe(mon.ObserveStorage)
	st.Observe = mon.ObserveStorage
	d := &runningDaemon{log: log, spool: sp, printer: p, store: st, fatal: fatal, lock: lock, socketDesc: desc, monitor: mon, apiAddr: ln.Addr()}
	healthz := func() api.Health {
		out := api.HealthOf(mon.Health())
		out.UnfinishedCaptures = svc.Unfinished()
		if pending != nil {
			out.DeviceAuthorization = pending()
		}
		return out
	}
	handler := api.Handler(api.Config{Capture: svc, Lines: svc, Spool: sp,
		CaptureTimeout: capture.Timeout(cfg.secupayTimeout, cfg.printWait), Health: healthz, Logger: log,
		ObserveCapture: mon.ObserveCapture, Status: mon.Status, Metrics: mon.Handler(),
		Preview: previewer(svc, opt)})
	d.srv = api.NewServer(handler, log)
	closeBrowser, err := d.serveBrowser(cfg.browser, handler) // the same handler: same limits and slots
	if err != nil {
		return nil, err
	}
	undo = append(undo, closeBrowser)
	if err := d.serveMetrics(cfg.fleetFlags); err != nil {
		return nil, err
	}
	d.start(cfg, svc, ln)
	ok = true
	return d, nil
}

// previewer draws a job's bytes (capture.Service.JobBytes) as the printer of opt will print
// them, for GET /v1/jobs/{id}/preview.png: streamed to w, in memory that does not grow with
// the receipt.
func previewer(svc *capture.Service, opt receipt.Options) func(io.Writer, string) error {
	return func(w io.Writer, id string) error {
		job, err := svc.JobBytes(id)
		if err != nil {
			return err
		}
		return receipt.WriteJobPNGFor(w, job, opt)
	}
}

// openPrinter opens the printer cfg names and picks its profile (asking the printer when
// --model is auto), and returns it with the layout for that profile and the model as status
// shows it: "TM-T20II (Device ID …)".
func openPrinter(cfg serveConfig, log *zap.Logger) (printer.Printer, receipt.Options, modelPrinter, error) {
	dev, err := printer.Open(cfg.printerURI)
	if err != nil {
		return nil, receipt.Options{}, modelPrinter{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	prof, why, err := chooseProfile(context.Background(), cfg.layout, dev)
	if err == nil {
		var opt receipt.Options
		if opt, err = cfg.layout.optionsFor(prof); err == nil {
			receiptReports(&opt, prof, cfg.layout, log)
			log.Info("printer profile", zap.String("model", prof.Key), zap.String("source", why), zap.Int("columns", opt.Columns))
			mp := modelPrinter{Printer: dev, model: prof.Key, source: why}
			return mp, opt, mp, nil
		}
	}
	dev.Close()
	return nil, receipt.Options{}, modelPrinter{}, err
}

// check validates the settings that need no file or device, so that a typo stops
// `ecrd serve` before it touches the state directory, and returns the drawer pin (nil: off).
func (c serveConfig) check() (*int, error) {
	if c.secupayURL == "" {
		return nil, fmt.Errorf("%w: --secupay-url (ECRD_SECUPAY_URL) is required", errUsage)
	}
	if c.printerURI == "" {
		return nil, fmt.Errorf("%w: --printer (ECRD_PRINTER) is required", errUsage)
	}
	// A code page is checked against the model only once it is known (auto: after asking
	// the printer).
	early := c.layout
	if _, auto, err := early.profile(); err != nil {
		return nil, err
	} else if auto {
		early.codepage = ""
	}
	if _, err := early.options(); err != nil {
		return nil, err
	}
	if err := c.browser.check(); err != nil {
		return nil, err
	}
	switch c.drawer {
	case "off", "":
		return nil, nil
	case "0", "1":
		pin, _ := strconv.Atoi(c.drawer)
		return &pin, nil
	}
	return nil, fmt.Errorf("%w: --drawer-kick must be off, 0 or 1, not %q", errUsage, c.drawer)
}

// listenAPI returns ln if set, else systemd's socket if activated, else a new socket at
// cfg.socket; and how to name it in the log.
func listenAPI(cfg serveConfig, ln net.Listener) (net.Listener, string, error) {
	if ln != nil {
		return ln, "unix:" + cfg.socket, nil
	}
	lns, err := activation.Listeners()
	if err != nil {
		return nil, "", fmt.Errorf("systemd socket activation: %w", err)
	}
	if len(lns) > 0 && lns[0] != nil {
		return lns[0], "systemd:" + lns[0].Addr().String(), nil
	}
	if ln, err = api.Listen(cfg.socket); err != nil {
		return nil, "", err
	}
	return ln, "unix:" + cfg.socket, nil
}

// start runs the daemon's goroutines: the print worker, the systemd loop, the idle printer
// check, the resume, pruning and resolver, and the API server on ln.
func (d *runningDaemon) start(cfg serveConfig, svc *capture.Service, ln net.Listener) {
	sp, log := d.spool, d.log
	wctx, cancel := context.WithCancel(context.Background())
	d.cancelWorker = cancel
	lctx, cancelLoop := context.WithCancel(context.Background())
	d.cancelLoop = cancelLoop
	d.wg.Add(4)
	go func() { defer d.wg.Done(); sp.Run(wctx) }()
	go func() { defer d.wg.Done(); d.notifyLoop(lctx) }()
	if cfg.printerCheck > 0 {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.checkPrinterLoop(wctx, cfg.printerCheck) }()
	}
	// Whatever a previous life left — receipts not yet spooled, captures whose answer was
	// lost — is finished in the background; the API is usable meanwhile. Then the resolver
	// keeps settling captures whose answer is lost while the daemon runs.
	go func() {
		defer d.wg.Done()
		svc.Resume(wctx)
		maintained := make(chan struct{})
		go func() { defer close(maintained); d.maintainState(wctx, svc) }()
		defer func() { <-maintained }()
		if cfg.resolveEvery > 0 {
			svc.RunResolver(wctx, cfg.resolveEvery)
		} else {
			<-wctx.Done()
		}
	}()
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api server stopped", zap.Error(err))
		}
	}()
}

// shutdown stops accepting requests, lets captures in flight finish, then lets the spool
// worker finish the job on the paper.
func (d *runningDaemon) shutdown(ctx context.Context) error {
	d.stopping.Store(true) // the watchdog is fed without checks while requests drain
	// Both listeners stop taking requests and drain at once.
	browserDone := d.shutdownBrowser(ctx)
	err := d.srv.Shutdown(ctx)
	<-browserDone
	if d.metricsSrv != nil {
		d.metricsSrv.Close()
	}
	d.cancelWorker()
	d.cancelLoop()
	d.wg.Wait()
	// The worker and the resume have stopped: hand the drawer pulses of receipts still
	// queued to the next start (a crash would drop them instead).
	if cerr := d.spool.Close(); cerr != nil {
		d.log.Error("drawer pulses of queued receipts may not have been handed over to the next start; those not handed over are never sent", zap.Error(cerr))
	}
	d.printer.Close()
	d.store.Close()
	d.lock.Close()
	d.log.Info("ecrd stopped")
	return err
}

// lockStateDir takes an exclusive lock on the state directory: two daemons on one journal
// could each capture a payment the other is capturing.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("state directory %s is in use by another ecrd: %w", dir, err)
	}
	return f, nil
}

// credentialPath resolves a bare file name (no slash) in $CREDENTIALS_DIRECTORY, where
// systemd's LoadCredential= puts it, so the env file can say ECRD_TOKEN_FILE=token and the
// unit need not set the variable (which would make OAuth's settings a conflict).
func credentialPath(name string) string {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" && !strings.Contains(name, "/") {
		return filepath.Join(dir, name)
	}
	return name
}

// tokenSource builds the one token holder of this daemon, and for the OAuth device grant a
// function that returns the user code waiting for a technician (nil when none waits).
func tokenSource(cfg serveConfig, log *zap.Logger) (secupay.TokenSource, func() *api.DeviceAuthorization, error) {
	switch {
	case cfg.tokenFile != "" && cfg.oauthClientID != "":
		return nil, nil, fmt.Errorf("%w: use --token-file or --oauth-client-id, not both", errUsage)
	case cfg.tokenFile != "":
		// Read it now: a missing, empty, unreadable or too readable token is a configuration
		// error to fix before the till takes money, not an error on every capture.
		tokens := secupay.NewFileToken(credentialPath(cfg.tokenFile))
		if _, err := tokens.Token(context.Background()); err != nil {
			return nil, nil, fmt.Errorf("%w: --token-file (ECRD_TOKEN_FILE): %v", errUsage, err)
		}
		return tokens, nil, nil
	case cfg.oauthClientID != "":
		o, err := secupay.NewOAuth(secupay.OAuthConfig{BaseURL: cfg.secupayURL, ClientID: cfg.oauthClientID,
			ClientSecretFile: cfg.oauthSecretFile, GrantType: cfg.oauthGrant, DeviceUUID: cfg.oauthDeviceUUID,
			StateFile: filepath.Join(cfg.stateDir, "oauth.json"), Logger: log})
		if err != nil {
			return nil, nil, err
		}
		pending := func() *api.DeviceAuthorization {
			if code, url := o.PendingUserCode(); code != "" {
				return &api.DeviceAuthorization{UserCode: code, VerificationURL: url}
			}
			return nil
		}
		return o, pending, nil
	}
	return nil, nil, fmt.Errorf("%w: set --token-file (ECRD_TOKEN_FILE) or --oauth-client-id (ECRD_OAUTH_CLIENT_ID)", errUsage)
}
