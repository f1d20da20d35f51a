package printer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// parseTCP parses tcp:HOST[:PORT]?timeout=5s&options: port 9100 unless given, and the dial
// timeout in t.dialTimeout.
func parseTCP(t *target, rest string, opts uriOptions) error {
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		// No port: the whole rest is the host (brackets allowed for IPv6).
		host, port = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]"), "9100"
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return errors.New("want tcp:host or tcp:host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	t.addr = net.JoinHostPort(host, port)
	t.dialTimeout = 5 * time.Second
	if err := opts.duration("timeout", &t.dialTimeout); err != nil {
		return err
	}
	return opts.device(&t.dev)
}

// tcpDialer connects to a raw (JetDirect, port 9100) printer. Status queries go over the same
// connection as jobs, which is how such printers answer DLE EOT. A dropped connection shows as
// an error on the next call; the device then dials again.
func tcpDialer(addr string, timeout time.Duration) Dialer {
	return func(ctx context.Context) (Conn, error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
