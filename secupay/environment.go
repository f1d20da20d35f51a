package secupay

import (
	"net"
	"net/url"
	"strings"
)

// Environments a base URL can point at (Environment). A till rolled out with the testing host
// takes no real money; one with the live host does: a technician must see which at a glance.
const (
	EnvLive    = "live"    // connect.secucard.com: real payments
	EnvTesting = "testing" // connect-testing.*: secupay's sandbox
	EnvLocal   = "local"   // loopback: a fake (ecrd demo, tests)
	EnvOther   = "other"   // any other host: a proxy, or a host ecrd does not know
)

// Environment says which of secupay's systems baseURL names (docs/secupay.md, "Hosts and
// paths"), from its host alone: it makes no call.
func Environment(baseURL string) string {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || u.Host == "" {
		return EnvOther
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "connect.secucard.com":
		return EnvLive
	case strings.HasPrefix(host, "connect-testing."):
		return EnvTesting
	case host == "localhost":
		return EnvLocal
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return EnvLocal
	}
	return EnvOther
}
