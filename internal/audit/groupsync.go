package audit

import (
	"os"
	"sync"
)

// GroupSync coalesces fsyncs of one file (or directory) by concurrent
// writers ("group commit"): Sync returns once an fsync that started after
// the call has completed, so everything the caller wrote before calling
// Sync is durable, but N concurrent callers cost about one fsync, not N.
// An fsync error is sticky: Linux may drop the dirty pages and clear the
// error, so a later "successful" fsync would prove nothing.
type GroupSync struct {
	f      *os.File
	mu     sync.Mutex // guards gen, synced, err
	gen    uint64     // Sync calls so far
	synced uint64     // every call up to this one is durable
	err    error
	syncMu sync.Mutex // one fsync at a time
}

// NewGroupSync returns a GroupSync for f. f stays owned by the caller.
func NewGroupSync(f *os.File) *GroupSync { return &GroupSync{f: f} }

// Sync makes everything written to the file before the call durable.
func (g *GroupSync) Sync() error {
	g.mu.Lock()
	g.gen++
	mine := g.gen
	g.mu.Unlock()

	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	g.mu.Lock()
	if g.err != nil || g.synced >= mine {
		err := g.err
		g.mu.Unlock()
		return err
	}
	target := g.gen // every writer counted here wrote before this fsync starts
	g.mu.Unlock()
	err := g.f.Sync()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.err = err
		return err
	}
	g.synced = target
	return nil
}
