package secupay

import "testing"

func TestEnvironment(t *testing.T) {
	for url, want := range map[string]string{
		"https://connect.secucard.com":                  EnvLive,
		"https://CONNECT.secucard.com/":                 EnvLive,
		"https://connect-testing.secuconnect.com":       EnvTesting,
		"https://connect-testing.secupay-ag.de":         EnvTesting,
		"http://127.0.0.1:8089":                         EnvLocal,
		"http://[::1]:8089":                             EnvLocal,
		"http://localhost:1":                            EnvLocal,
		"https://proxy.example.net":                     EnvOther,
		"https://connect.secucard.com.evil.example.net": EnvOther,
		"not a url": EnvOther,
		"":          EnvOther,
	} {
		if got := Environment(url); got != want {
			t.Errorf("Environment(%q) = %q, want %q", url, got, want)
		}
	}
}
