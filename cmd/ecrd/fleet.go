package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/monitor"
)

// fleetFlags are the settings for running many tills: metrics, health limits.
type fleetFlags struct {
	metricsListen      string
	metricsAllowRemote bool
	printerGrace       time.Duration
	unfinishedLimit    time.Duration
	printerCheck       time.Duration
}

func (f *fleetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "also serve GET /metrics over TCP on this address, e.g. 127.0.0.1:9464 (off by default; loopback only unless --metrics-allow-remote)")
	fs.BoolVar(&f.metricsAllowRemote, "metrics-allow-remote", false, "allow --metrics-listen on an address other machines can reach (the metrics carry no secrets, but say how busy the till is)")
	fs.DurationVar(&f.printerGrace, "health-printer-grace", 5*time.Minute, "how long the printer may be not ready (paper out, cover open, offline) before /healthz answers 503")
	fs.DurationVar(&f.unfinishedLimit, "health-unfinished-age", 10*time.Minute, "how long captures may stay in doubt or unspooled before /healthz answers 503")
	fs.DurationVar(&f.printerCheck, "printer-check", 30*time.Second, "how often an idle printer is asked for its state, so that paper running out shows before the next receipt (0 = only when printing)")
}

// listenMetrics opens the TCP listener of --metrics-listen. An address other hosts can
// reach is refused unless --metrics-allow-remote: the local socket is the API's only door,
// and opening a second one must be a decision.
func listenMetrics(f fleetFlags, log *zap.Logger) (net.Listener, error) {
	loopback, err := loopbackAddr(f.metricsListen)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics-listen %q: %v", errUsage, f.metricsListen, err)
	}
	if !loopback {
		if !f.metricsAllowRemote {
			return nil, fmt.Errorf("%w: --metrics-listen %q is not a loopback address; add --metrics-allow-remote to serve metrics to other hosts", errUsage, f.metricsListen)
		}
		log.Warn("metrics served to other hosts", zap.String("address", f.metricsListen))
	}
	ln, err := net.Listen("tcp", f.metricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	log.Info("metrics listener", zap.String("address", ln.Addr().String()))
	return ln, nil
}

// serveMetrics opens the --metrics-listen listener, if set, and serves GET /metrics on it until
// shutdown closes it.
func (d *runningDaemon) serveMetrics(f fleetFlags) error {
	if f.metricsListen == "" {
		return nil
	}
	mln, err := listenMetrics(f, d.log)
	if err != nil {
		return err
	}
	d.metricsSrv = metricsServer(d.monitor, d.log)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener stopped", zap.Error(err))
		}
	}()
	return nil
}

// loopbackAddr says whether addr (host:port) can be reached from this machine only:
// localhost, or an address in 127.0.0.0/8 or ::1. An empty host (":9464") is every address.
func loopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback(), nil
	}
	return host == "localhost", nil
}

// metricsServer serves only GET /metrics: the TCP listener must never expose the API.
func metricsServer(mon *monitor.Monitor, log *zap.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", mon.Handler())
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: zap.NewStdLog(log)}
}

// checkPrinterLoop asks the printer for its state at start and then every interval while no
// job waits (the worker asks it then), so that status, metrics and /healthz know about paper
// running out on an idle till before the next customer's receipt. A check still running —
// the printer is busy with a job — is not doubled, and never holds up the loop or shutdown.
func (d *runningDaemon) checkPrinterLoop(ctx context.Context, every time.Duration) {
	var running atomic.Bool
	check := func() {
		if len(d.spool.Pending()) > 0 || !running.CompareAndSwap(false, true) {
			return
		}
		go func() {
			defer running.Store(false)
			d.spool.Status(ctx)
		}()
	}
	check()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

// statusEvery is how often the systemd status line is refreshed without a watchdog.
const statusEvery = 5 * time.Second

// notifyLoop tells systemd how the daemon is: STATUS= with the one-line summary whenever it
// changes, and — when the unit has WatchdogSec= — WATCHDOG=1 only while the daemon works:
// the print worker comes round its loop when it promised to (spool.Alive) and the API
// answers on its own socket. A bare ticker would keep a daemon alive whose worker is stuck
// in a printer driver and whose receipts silently pile up; without pings systemd restarts it.
func (d *runningDaemon) notifyLoop(ctx context.Context) {
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog setting unreadable", zap.Error(err))
	}
	every := statusEvery
	if wd > 0 {
		every = wd / 2 // systemd's advice: ping at half the interval
	}
	client := d.selfClient(every)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastStatus, lastProblem string
	// The first round comes as the daemon starts, when the print worker may not have begun
	// its loop yet: it would be judged stuck, and an error logged for a daemon that works.
	// The first ping comes a round later, at half the watchdog's interval: in time.
	for first := true; ; first = false {
		if wd > 0 && !first {
			problem := ""
			if !d.stopping.Load() {
				problem = d.alive(ctx, client)
			}
			if problem == "" {
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
			if problem != lastProblem {
				if problem != "" {
					d.log.Error("watchdog not fed: the daemon is not working", zap.String("reason", problem))
				} else if lastProblem != "" {
					d.log.Info("watchdog fed again")
				}
				lastProblem = problem
			}
		}
		if line := d.monitor.StatusLine(); line != lastStatus {
			daemon.SdNotify(false, "STATUS="+line)
			lastStatus = line
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// alive says why the daemon is not working, or "" when it is.
func (d *runningDaemon) alive(ctx context.Context, client *http.Client) string {
	if err := d.spool.Alive(time.Now()); err != nil {
		return err.Error()
	}
	if client == nil {
		return ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://ecrd/healthz", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return "api not answering: " + err.Error()
	}
	resp.Body.Close()
	// Any answer counts, 503 too: "degraded" is for a monitor to judge; the watchdog
	// restarts only a daemon that cannot answer at all.
	return ""
}

// selfClient is an HTTP client that dials the API's own listener, with a timeout below the
// ping interval so that a hanging API misses its ping.
func (d *runningDaemon) selfClient(timeout time.Duration) *http.Client {
	if d.apiAddr == nil {
		return nil
	}
	network, addr := d.apiAddr.Network(), d.apiAddr.String()
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dl net.Dialer
				return dl.DialContext(ctx, network, addr)
			},
		},
	}
}
