package printer

import (
	"context"
	"net"
	"time"
)

// tcpDialer connects to a raw (JetDirect, port 9100) printer. Status queries go over the same
// connection as jobs, which is how such printers answer DLE EOT. A dropped connection shows as
// an error on the next call; the device then dials again.
func tcpDialer(addr string, timeout time.Duration) dialFunc {
	return func(ctx context.Context) (conn, error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
