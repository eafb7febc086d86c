package freshcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/state"
)

// StoreName is the file in the client's state directory that keeps the
// newest statement accepted per repository and architecture (a
// freshness.AcceptedSet).
const StoreName = "statements.jsonl"

// maxStore bounds the stored file.
const maxStore = freshness.MaxAcceptedRecords * freshness.MaxAcceptedSize

// Load reads the accepted records of the state directory: empty when the
// file (or a read-only directory) does not exist. A file that does not
// parse is a *state.CorruptError, never an empty set: forgetting what was
// accepted would let a rollback through.
func Load(dir *state.Dir) (*freshness.AcceptedSet, error) {
	p := dir.Path(StoreName)
	b, err := durable.ReadFile(p, maxStore)
	var tl *durable.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return freshness.NewAcceptedSet(), nil
	case errors.As(err, &tl):
		return nil, &state.CorruptError{Path: p, Reason: fmt.Sprintf("larger than %d bytes", maxStore)}
	case err != nil:
		return nil, err
	}
	set, err := freshness.ParseAcceptedSet(b)
	if err != nil {
		return nil, &state.CorruptError{Path: p, Reason: err.Error()}
	}
	return set, nil
}

// Commit keeps the Accepted record of every OK verdict in dir, where it is
// newer than the stored one. dir must be writable. Unless the caller holds
// the directory's lock (locked), Commit takes it; the stored records are
// read again under the lock, so a concurrent run's newer record is never
// replaced by an older one. It returns how many records moved.
func Commit(ctx context.Context, dir *state.Dir, locked bool, vs []Verdict) (int, error) {
	var acc []*freshness.Accepted
	for _, v := range vs {
		if v.Outcome == OK && v.Accepted != nil {
			acc = append(acc, v.Accepted)
		}
	}
	if len(acc) == 0 {
		return 0, nil
	}
	if !locked {
		unlock, err := dir.Lock(ctx)
		if err != nil {
			return 0, err
		}
		defer unlock()
	}
	set, err := Load(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range acc {
		moved, err := set.Put(a)
		if err != nil {
			return n, err
		}
		if moved {
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	b, err := set.Marshal()
	if err != nil {
		return 0, err
	}
	if err := durable.WriteFile(dir.Path(StoreName), b, 0o600); err != nil {
		return 0, err
	}
	return n, nil
}
