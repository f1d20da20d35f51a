package wal

// A Batch commits many changes of one kind — the prunes' removals — a frame at a time,
// none flushed, so that a prune of any length appends frames of a bounded size.
type Batch struct {
	log       *Log
	ops       []Op
	committed int
}

// batchSize is the ops in one of a Batch's frames.
const batchSize = 512

// Batch starts a batch on the log.
func (l *Log) Batch() *Batch { return &Batch{log: l} }

// Add adds op, committing the batch's frame when it is full.
func (b *Batch) Add(op Op) error {
	b.ops = append(b.ops, op)
	if len(b.ops) < batchSize {
		return nil
	}
	return b.Flush()
}

// Flush commits what was added since the last frame (without flushing it to the disk).
func (b *Batch) Flush() error {
	if len(b.ops) == 0 {
		return nil
	}
	err := b.log.Commit(false, b.ops...)
	if err == nil {
		b.committed += len(b.ops)
	}
	b.ops = b.ops[:0]
	return err
}

// Committed is how many ops the batch has committed.
func (b *Batch) Committed() int { return b.committed }
