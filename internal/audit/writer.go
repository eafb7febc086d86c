package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
)

// ErrLocked is returned (wrapped) by Open when another process holds the
// audit log open for appending.
var ErrLocked = errors.New("audit log is in use by another signer")

// Writer appends records to an audit log. It holds an exclusive flock on the
// file from Open to Close, so two signers can never interleave, and a mutex,
// so goroutines of one signer can share it.
type Writer struct {
	// Now is the clock used for Record.Time; tests replace it.
	Now func() time.Time

	mu     sync.Mutex
	f      *os.File
	sync   *durable.GroupSync
	path   string
	head   Head
	broken error // set after a failed write: the tail may be torn
}

// Open opens (creating it if needed, mode 0644) the audit log at path for
// appending, takes an exclusive lock on it without waiting (ErrLocked if
// another process holds it) and verifies the existing chain: a broken chain
// is returned as a *ChainError and nothing can be appended until a human has
// looked at it. A new file's directory is fsync'ed so the file survives a
// crash.
func Open(path string) (*Writer, error) { return OpenScan(path, nil) }

// OpenScan is Open, also handing every existing record to fn while the chain
// is verified (see Scan): a signer uses it to learn which signatures are
// already audited. fn's results count only if OpenScan returns no error.
func OpenScan(path string, fn func(line int, rec Record) error) (*Writer, error) {
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := durable.TryLockFile(f); err != nil {
		f.Close()
		if errors.Is(err, durable.ErrLocked) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if created {
		if err := durable.SyncDir(filepath.Dir(path)); err != nil {
			durable.CloseLocked(f)
			return nil, err
		}
	}
	head, err := Scan(io.NewSectionReader(f, 0, 1<<62), fn)
	if err != nil {
		durable.CloseLocked(f)
		var ce *ChainError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return &Writer{Now: time.Now, f: f, sync: durable.NewGroupSync(f), path: path, head: head}, nil
}

// Head returns the end of the chain: what the next record's Prev will be.
func (w *Writer) Head() Head {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.head
}

// Append fills in rec's SchemaVersion (PackageSchemaVersion, SchemaVersion
// for a statement's record), Prev and (if empty) Time, validates
// it, writes it as one line with a single write and returns once the file
// is fsync'ed. Concurrent Appends share fsyncs (group commit); the chain
// order is the order of the writes. It returns the record as written.
// After a failed write or fsync the Writer refuses every further Append
// (the file may end in a torn or lost line that a human must look at); a
// record whose Append failed may still be in the file.
func (w *Writer) Append(rec Record) (Record, error) {
	w.mu.Lock()
	if w.broken != nil {
		w.mu.Unlock()
		return rec, fmt.Errorf("audit log %s: an earlier append failed: %w", w.path, w.broken)
	}
	if w.f == nil {
		w.mu.Unlock()
		return rec, fmt.Errorf("audit log %s is closed", w.path)
	}
	rec.SchemaVersion = PackageSchemaVersion
	if rec.IsStatement() || rec.LogKind != "" {
		rec.SchemaVersion = SchemaVersion
	}
	rec.Prev = w.head.Hash
	if rec.Time == "" {
		rec.Time = w.Now().UTC().Format(time.RFC3339Nano)
	}
	if err := rec.Validate(); err != nil {
		w.mu.Unlock()
		return rec, fmt.Errorf("audit record: %w", err)
	}
	line, err := rec.marshal()
	if err != nil {
		w.mu.Unlock()
		return rec, err
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := w.f.Write(buf); err != nil {
		w.broken = err
		w.mu.Unlock()
		return rec, fmt.Errorf("writing audit log %s: %w", w.path, err)
	}
	w.head = Head{Records: w.head.Records + 1, Hash: LineHash(line)}
	gs := w.sync
	w.mu.Unlock()
	if err := gs.Sync(); err != nil {
		w.mu.Lock()
		w.broken = err
		w.mu.Unlock()
		return rec, fmt.Errorf("syncing audit log %s: %w", w.path, err)
	}
	return rec, nil
}

// Close releases the lock and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	// Releases the flock even while a child being started holds a copy
	// of the descriptor.
	err := durable.CloseLocked(w.f)
	w.f = nil
	return err
}
