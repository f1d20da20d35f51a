package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ecrd-pos/ecrd/internal/wal"
	"go.uber.org/zap"
)

// errDamaged marks a job file that was read but does not hold its job: set aside, never
// retried. Any other error of readRecord is I/O, worth another try.
var errDamaged = errors.New("job file damaged")

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", errDamaged, err)
	}
	if r.ID == "" || r.ID+".json" != filepath.Base(path) {
		return nil, fmt.Errorf("%w: job id %q does not match its file name", errDamaged, r.ID)
	}
	if len(r.Data) == 0 && filepath.Base(filepath.Dir(path)) == "queue" {
		return nil, fmt.Errorf("%w: no bytes to print", errDamaged)
	}
	return &r, nil
}

// setAside renames a damaged job file to NAME.bad, where a technician can look at it, and
// notes a queued one as damaged so that its owner can remake it (Damaged, Replace).
func (s *Spool) setAside(path string, why error) error {
	s.log.Error("spool: damaged job file set aside", zap.String("file", path), zap.Error(why))
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("spool: set aside %s: %w", path, err)
	}
	rel := s.queueRel + filepath.Base(path)
	if filepath.Dir(path) != s.queueDir {
		rel = s.doneRel + filepath.Base(path)
	}
	if err := s.commit(false, wal.Op{Path: rel + ".bad", Data: raw}, wal.Op{Path: rel, Remove: true}); err != nil {
		return fmt.Errorf("spool: set aside %s: %w", path, err)
	}
	if filepath.Dir(path) == s.queueDir {
		s.damaged[strings.TrimSuffix(filepath.Base(path), ".json")] = true
	}
	return nil
}

// findDamaged notes the queued jobs set aside in an earlier life and not remade since.
func (s *Spool) findDamaged() error {
	ents, err := os.ReadDir(s.queueDir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json.bad")
		if !ok || s.queued[id] != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.doneDir, id+".json")); err == nil {
			continue
		}
		s.damaged[id] = true
	}
	return nil
}

// Damaged returns the ids of queued jobs whose files were damaged and set aside, for their
// owner to remake: a receipt is remade from the journal, never silently dropped.
func (s *Spool) Damaged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.damaged))
	for id := range s.damaged {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Replace adds job in place of the damaged job of the same id, then removes the damaged
// file: from then on the job is queued like any other.
func (s *Spool) Replace(job Job) (Info, error) {
	st, err := s.Stage(job)
	if err != nil {
		return Info{}, err
	}
	ops := append(st.Ops(), wal.Op{Path: s.queueRel + job.ID + ".json.bad", Remove: true})
	if err := s.commit(true, ops...); err != nil {
		return Info{}, err
	}
	st.Enqueue()
	s.mu.Lock()
	delete(s.damaged, job.ID)
	s.mu.Unlock()
	return s.Job(job.ID)
}
