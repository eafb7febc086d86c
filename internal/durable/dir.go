package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// Dir is a directory open for durable writes by concurrent writers: each
// replaces its files with WriteFile and then calls Sync, and the
// directory fsyncs of writers that overlap are shared.
type Dir struct {
	path string
	f    *os.File
	sync *GroupSync
}

// OpenDir opens the directory at path.
func OpenDir(path string) (*Dir, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, f: f, sync: NewGroupSync(f)}, nil
}

// Path returns the directory's path as given to OpenDir.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// WriteFile replaces the file name in d with data like the package's
// WriteFile (temp file, fsync, rename), but leaves the directory fsync to
// Sync: the rename is atomic at once and durable after the next Sync.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode) error {
	return replace(d.path, name, writeBytes(data), perm, true)
}

// Sync makes every rename in d done before the call durable (group
// commit, see GroupSync).
func (d *Dir) Sync() error {
	if err := d.sync.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", d.path, err)
	}
	return nil
}

// Batch replaces many files of one directory with a single data sync: Add
// writes each new content to a temp file without fsync; Commit makes them
// all durable at once (one syncfs(2) of the file system on Linux, an fsync
// per file elsewhere), renames each into place and fsyncs the directory
// once. A crash leaves each file old or new (each valid) and at most temp
// files, which RemoveStaleTemps finds.
type Batch struct {
	dir   *Dir
	mu    sync.Mutex
	files []batchFile
}

type batchFile struct {
	name string
	tmp  string // "" once renamed or failed
}

// Batch returns an empty batch of writes into d.
func (d *Dir) Batch() *Batch { return &Batch{dir: d} }

// Add writes data to a temp file that Commit will rename to name, and
// returns the file's index in Commit's result. Add may be called
// concurrently. On error nothing is left behind and the file is not part
// of the batch.
func (b *Batch) Add(name string, data []byte, perm fs.FileMode) (int, error) {
	tmp, err := writeTemp(b.dir.path, name, writeBytes(data), perm, false)
	if err != nil {
		return -1, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files = append(b.files, batchFile{name: name, tmp: tmp})
	return len(b.files) - 1, nil
}

// SyncError is a failed data sync of a Batch: no file of the batch was
// renamed, and their temp files are removed.
type SyncError struct{ Err error }

func (e *SyncError) Error() string { return "syncing the new files: " + e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

// Commit makes the added files durable and renames them into place.
// errs[i] is the outcome of the i-th added file: nil when it is in place,
// a *SyncError for all of them when the data sync failed (nothing is
// renamed), the rename's error when only that file could not be moved
// (its temp file is removed). dirErr is a failed directory fsync after
// the renames: the files are in place, readers see them, but they may not
// survive a crash. The batch is empty afterwards.
func (b *Batch) Commit() (errs []error, dirErr error) {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	errs = make([]error, len(files))
	if len(files) == 0 {
		return errs, nil
	}
	tmps := make([]string, len(files))
	for i, f := range files {
		tmps[i] = f.tmp
	}
	err := inject(stepSyncFiles)
	if err == nil {
		err = syncFiles(b.dir.path, tmps)
	}
	if err != nil {
		for i, f := range files {
			os.Remove(f.tmp)
			errs[i] = &SyncError{Err: err}
		}
		return errs, nil
	}
	renamed := false
	for i, f := range files {
		if err := os.Rename(f.tmp, filepath.Join(b.dir.path, f.name)); err != nil {
			os.Remove(f.tmp)
			errs[i] = err
			continue
		}
		renamed = true
	}
	if renamed {
		dirErr = b.dir.Sync()
	}
	return errs, dirErr
}

// Abort removes the temp files of a batch that will not be committed.
func (b *Batch) Abort() error {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	var errs []error
	for _, f := range files {
		if err := os.Remove(f.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
