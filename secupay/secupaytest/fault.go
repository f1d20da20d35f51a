package secupaytest

import (
	"bufio"
	"fmt"
	"net/http"
	"time"
)

// Fault makes the next matching request go wrong. Faults are matched in the order queued.
type Fault struct {
	Op           string        // "start", "get", "token"
	ID           string        // "" = any transaction
	Status       int           // HTTP status to answer with (0: the normal one, or 200 with Body)
	Body         string        // raw body to send, e.g. malformed JSON; "" with Status: a generic error body
	Delay        time.Duration // answer this late; a client that gives up first leaves the server doing nothing (unless CaptureFirst)
	Cut          bool          // write the headers and half the body, then cut the connection
	CaptureFirst bool          // do the real work (capture, token issue), THEN answer per the fault: an answer lost after secupay acted
	// Processing makes secupay work on a start/cash for this long whether or not the client
	// waits: meanwhile a GET shows the old status and another start/cash is refused as
	// "being processed"; then the capture happens, and the answer goes to a client still
	// listening. This is the slow secupay that a client timeout must never take for "not captured".
	Processing time.Duration
	Times      int // how many requests it hits; 0 = once
}

// Fault queues f.
func (s *Server) Fault(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults drops queued faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

func (s *Server) takeFaultLocked(op, id string) *Fault {
	for i, f := range s.faults {
		if f.Op != op || (f.ID != "" && f.ID != id) {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

func (f *Fault) answer() answer {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := []byte(f.Body)
	if f.Body == "" {
		body = errBody("ProductInternalException", fmt.Sprintf("fault injected: %d", status),
			"Es ist ein interner Fehler aufgetreten", 0, NewSupportID())
	}
	return answer{status, body}
}

// delay waits d unless the client goes away or the server closes; it reports whether to answer.
func (s *Server) delay(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

// cut announces the whole body, sends half of it and drops the connection, so the client
// sees a truncated answer (unexpected EOF), not a short valid one.
func cut(w http.ResponseWriter, a answer) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("secupaytest: cut needs HTTP/1.1")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	writeCut(buf, a)
}

func writeCut(buf *bufio.ReadWriter, a answer) {
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		a.status, http.StatusText(a.status), len(a.body))
	buf.Write(a.body[:len(a.body)/2])
	buf.Flush()
}
