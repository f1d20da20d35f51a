package secupaytest

import "maps"

// Calls counts what reached the fake, as a test asserts it: how often secupay was asked, and
// what it did. A snapshot, taken by Server.Calls.
type Calls struct {
	// StartCash counts start/cash requests by transaction id (refused ones too);
	// TotalStartCash for any id.
	StartCash      map[string]int
	TotalStartCash int
	// Captures counts the start/cash requests that actually captured each id (0 or 1 unless
	// a test resets the status).
	Captures map[string]int
	// Get counts GET requests by transaction id.
	Get map[string]int
	// Requests counts every request that reached the server, on any path.
	Requests int
	// Token counts /oauth/token requests; Grants lists their grant_type in order.
	Token  int
	Grants []string
	// MaxConcurrentToken is the most /oauth/token requests ever in progress at once. secupay
	// invalidates a token when it issues the next, so a correct client keeps this at 1.
	MaxConcurrentToken int
}

// Calls returns a snapshot of what reached the server so far.
func (s *Server) Calls() Calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	c.StartCash, c.Captures, c.Get = maps.Clone(c.StartCash), maps.Clone(c.Captures), maps.Clone(c.Get)
	c.Grants = append([]string(nil), c.Grants...)
	return c
}
