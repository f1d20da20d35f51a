package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/api"
	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/spool"
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
	resolveEvery, journalKeep                  time.Duration
	logLevel, logFormat                        string
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
	fs.DurationVar(&c.journalKeep, "journal-keep", 90*24*time.Hour, "how long finished captures stay in the journal (pruned at start; 0 = forever)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "json (for journald) or console")
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
		"A bare --token-file or --oauth-client-secret-file name is looked up in $CREDENTIALS_DIRECTORY.\n\n")
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
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q (secrets are read from files, never from the command line)", errUsage, fs.Arg(0))
	}
	log, err := newLogger(cfg.logLevel, cfg.logFormat, stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := startDaemon(cfg, log, nil)
	if err != nil {
		log.Error("ecrd not started", zap.Error(err))
		return err
	}
	daemon.SdNotify(false, daemon.SdNotifyReady)
	log.Info("ecrd serving", zap.String("socket", d.socketDesc), zap.String("printer", cfg.printerURI),
		zap.String("state_dir", cfg.stateDir), zap.String("version", versionString()))
	<-ctx.Done()
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	log.Info("ecrd stopping: finishing the job on the paper and requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return d.shutdown(sctx)
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("--log-format must be json or console, not %q", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// runningDaemon is ecrd's parts, started: spool worker, API server.
type runningDaemon struct {
	log        *zap.Logger
	srv        *http.Server
	spool      *spool.Spool
	printer    printer.Printer
	lock       *os.File
	socketDesc string

	cancelWorker context.CancelFunc
	wg           sync.WaitGroup
}

// startDaemon opens everything cfg names and starts serving on ln (nil: systemd's socket
// if activated, else cfg.socket).
func startDaemon(cfg serveConfig, log *zap.Logger, ln net.Listener) (*runningDaemon, error) {
	if cfg.secupayURL == "" {
		return nil, fmt.Errorf("%w: --secupay-url (ECRD_SECUPAY_URL) is required", errUsage)
	}
	if cfg.printerURI == "" {
		return nil, fmt.Errorf("%w: --printer (ECRD_PRINTER) is required", errUsage)
	}
	opt, err := cfg.layout.options()
	if err != nil {
		return nil, err
	}
	var drawerPin *int
	switch cfg.drawer {
	case "off", "":
	case "0", "1":
		pin, _ := strconv.Atoi(cfg.drawer)
		drawerPin = &pin
	default:
		return nil, fmt.Errorf("%w: --drawer-kick must be off, 0 or 1, not %q", errUsage, cfg.drawer)
	}
	if err := os.MkdirAll(cfg.stateDir, 0o750); err != nil {
		return nil, err
	}
	lock, err := lockStateDir(cfg.stateDir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()

	tokens, health, err := tokenSource(cfg, log)
	if err != nil {
		return nil, err
	}
	client := &secupay.Client{BaseURL: cfg.secupayURL, Tokens: tokens, Timeout: cfg.secupayTimeout, Logger: log}
	p, err := printer.Open(cfg.printerURI)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	sp, err := spool.Open(filepath.Join(cfg.stateDir, "spool"), p, spool.Options{Poll: cfg.poll, Logger: log})
	if err != nil {
		p.Close()
		return nil, err
	}
	journal, err := capture.OpenJournal(filepath.Join(cfg.stateDir, "journal"))
	if err != nil {
		p.Close()
		return nil, err
	}
	svc := capture.New(capture.Config{Journal: journal, Secupay: client, Spool: sp, Render: opt,
		DrawerPin: drawerPin, PrintWait: cfg.printWait, KeepFinished: cfg.journalKeep, Logger: log})

	desc := "unix:" + cfg.socket
	if ln == nil {
		lns, err := activation.Listeners()
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("systemd socket activation: %w", err)
		}
		if len(lns) > 0 && lns[0] != nil {
			ln, desc = lns[0], "systemd:"+lns[0].Addr().String()
		} else if ln, err = api.Listen(cfg.socket); err != nil {
			p.Close()
			return nil, err
		}
	}
	d := &runningDaemon{log: log, spool: sp, printer: p, lock: lock, socketDesc: desc}
	healthz := func() map[string]any {
		out := map[string]any{"unfinished_captures": svc.Unfinished()}
		if health != nil {
			maps.Copy(out, health())
		}
		return out
	}
	d.srv = api.NewServer(api.Handler(api.Config{Capture: svc, Spool: sp,
		CaptureTimeout: cfg.secupayTimeout*3 + cfg.printWait, Health: healthz, Logger: log}), log)

	wctx, cancel := context.WithCancel(context.Background())
	d.cancelWorker = cancel
	d.wg.Add(3)
	go func() { defer d.wg.Done(); sp.Run(wctx) }()
	// Whatever a previous life left — receipts not yet spooled, captures whose answer was
	// lost — is finished in the background; the API is usable meanwhile. Then the resolver
	// keeps settling captures whose answer is lost while the daemon runs.
	go func() {
		defer d.wg.Done()
		svc.Resume(wctx)
		if cfg.resolveEvery > 0 {
			svc.RunResolver(wctx, cfg.resolveEvery)
		}
	}()
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api server stopped", zap.Error(err))
		}
	}()
	ok = true
	return d, nil
}

// shutdown stops accepting requests, lets captures in flight finish, then lets the spool
// worker finish the job on the paper.
func (d *runningDaemon) shutdown(ctx context.Context) error {
	err := d.srv.Shutdown(ctx)
	d.cancelWorker()
	d.wg.Wait()
	d.printer.Close()
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

// tokenSource builds the one token holder of this daemon.
func tokenSource(cfg serveConfig, log *zap.Logger) (secupay.TokenSource, func() map[string]any, error) {
	switch {
	case cfg.tokenFile != "" && cfg.oauthClientID != "":
		return nil, nil, fmt.Errorf("%w: use --token-file or --oauth-client-id, not both", errUsage)
	case cfg.tokenFile != "":
		path := credentialPath(cfg.tokenFile)
		if err := secupay.CheckSecretFile(path); err != nil {
			return nil, nil, err
		}
		return secupay.NewFileToken(path), nil, nil
	case cfg.oauthClientID != "":
		o, err := secupay.NewOAuth(secupay.OAuthConfig{BaseURL: cfg.secupayURL, ClientID: cfg.oauthClientID,
			ClientSecretFile: cfg.oauthSecretFile, GrantType: cfg.oauthGrant, DeviceUUID: cfg.oauthDeviceUUID,
			StateFile: filepath.Join(cfg.stateDir, "oauth.json"), Logger: log})
		if err != nil {
			return nil, nil, err
		}
		health := func() map[string]any {
			if code, url := o.PendingUserCode(); code != "" {
				return map[string]any{"device_authorization": map[string]string{"user_code": code, "verification_url": url}}
			}
			return nil
		}
		return o, health, nil
	}
	return nil, nil, fmt.Errorf("%w: set --token-file (ECRD_TOKEN_FILE) or --oauth-client-id (ECRD_OAUTH_CLIENT_ID)", errUsage)
}
