// Package state is bintrans's persistent state directory: the last verified
// log checkpoint (what makes rollback and split views detectable), and a
// lock that serializes concurrent runs (two pacman hooks, a hook and a
// monitor).
//
// Guarantees:
//   - writes are atomic and durable: temp file in the same directory, fsync,
//     rename, fsync of the directory. A crash leaves the old or the new file,
//     never a mix;
//   - a state file that does not parse is a *CorruptError, never silently
//     reset: forgetting the stored checkpoint would let a log roll back
//     unnoticed. A human removes the file after looking at it;
//   - the stored checkpoint never moves backwards (see CheckpointStore.Store).
//
// The package stores; it does not verify. The verify engine checks a
// checkpoint (signature, consistency with the stored one) before storing it.
package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/rootfile"
	"github.com/bintrans/bintrans/verify"
)

// DefaultDir is the state directory when none is configured (--state-dir).
const DefaultDir = "/var/lib/bintrans"

// SchemaVersion is the version of the checkpoint file format.
const SchemaVersion = 1

// maxStateFile bounds a checkpoint state file: the JSON envelope of a
// checkpoint of at most verify.MaxCheckpointSize bytes, even if every byte
// were escaped as \u00XX (6x).
const maxStateFile = 8*verify.MaxCheckpointSize + 1024

// InsecureDirError is a state directory that others can write to (group or
// world writable, or owned by another non-root user): whoever can write it
// can replace the stored checkpoint and hide a rollback.
type InsecureDirError struct {
	Path string
	Mode fs.FileMode
	UID  int
}

func (e *InsecureDirError) Error() string {
	return fmt.Sprintf("state: directory %s is writable by others (mode %v, owner uid %d): chmod 0700 it and chown it to the user running bintrans", e.Path, e.Mode.Perm(), e.UID)
}

// CorruptError is a state file that exists but cannot be used. It is never
// overwritten by this package.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state: %s is corrupt (%s); it is kept as is: inspect it, then remove it to start over (this forgets the last verified checkpoint)", e.Path, e.Reason)
}

// ForkError is a checkpoint of the same tree size as the stored one but with
// another root hash: two views of the log. It carries both notes as
// evidence. (Normally the engine detects this before calling Store; this is
// the last line when two runs raced.)
type ForkError struct {
	Path          string
	Size          uint64
	Stored, Given []byte
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("SECURITY ERROR: state: two different log checkpoints for tree size %d\nstored (%s):\n%s\ngiven:\n%s", e.Size, e.Path, e.Stored, e.Given)
}

// LockError is a lock that could not be taken (ctx ended first, or the lock
// file could not be opened).
type LockError struct {
	Path string
	Err  error
}

func (e *LockError) Error() string { return fmt.Sprintf("state: lock %s: %v", e.Path, e.Err) }
func (e *LockError) Unwrap() error { return e.Err }

// Dir is an open state directory.
type Dir struct {
	path     string
	readOnly bool
}

// ErrReadOnly is returned by Lock and by a checkpoint store's Store on a
// directory opened with OpenReadOnly.
var ErrReadOnly = errors.New("state directory opened read-only")

// Open opens the state directory dir (DefaultDir when empty), creating it
// (and its parents) with mode 0700 when missing. An existing directory that
// others can write is refused with *InsecureDirError; as root, so is one
// below a directory others can write (*rootfile.InsecureError). Open does not need
// write access: a read-only directory opens, and writes then fail.
func Open(dir string) (*Dir, error) {
	if dir == "" {
		dir = DefaultDir
	}
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state: creating %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil { // MkdirAll applies the umask
			return nil, fmt.Errorf("state: %w", err)
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := checkDir(dir, fi); err != nil {
		return nil, err
	}
	return &Dir{path: dir}, nil
}

// OpenReadOnly opens the state directory dir (DefaultDir when empty) for
// reading only, as offline verification does: it never creates, locks or
// writes anything, so it works on a read-only file system and never waits
// for a concurrent run. A directory that does not exist is an empty state
// (every Load returns nil, nil); one that exists is checked like Open
// (*InsecureDirError) and must be readable (a permission error otherwise:
// the stored checkpoint is never skipped silently). A state file is replaced by rename only, so a read
// without the lock sees the old file or the new one, never a mix.
func OpenReadOnly(dir string) (*Dir, error) {
	if dir == "" {
		dir = DefaultDir
	}
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &Dir{path: dir, readOnly: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := checkDir(dir, fi); err != nil {
		return nil, err
	}
	// A directory this user cannot read (root's 0700 state, read by a user's
	// offline verify) is an error, not an empty state: skipping the stored
	// checkpoint silently would skip its check.
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	d.Close()
	return &Dir{path: dir, readOnly: true}, nil
}

// checkDir refuses a state directory that is not a directory or that others
// can write.
func checkDir(dir string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("state: %s is not a directory", dir)
	}
	uid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid = int(st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 || (uid != -1 && uid != 0 && uid != os.Geteuid()) {
		return &InsecureDirError{Path: dir, Mode: fi.Mode(), UID: uid}
	}
	// As root, the directories above it too (and the links on the way):
	// whoever can rename one of them can swap the state directory.
	if err := rootfile.Check(dir); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// ReadOnly reports whether the directory was opened with OpenReadOnly.
func (d *Dir) ReadOnly() bool { return d.readOnly }

// String returns the directory's path.
func (d *Dir) String() string { return d.path }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// Path returns the path of the state file name inside the directory. name
// must be a plain file name ([A-Za-z0-9._-], at most 128 bytes, not starting
// with '.' or '-'); anything else is a programming error and panics.
func (d *Dir) Path(name string) string {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("state: invalid state file name %q", name))
	}
	return filepath.Join(d.path, name)
}

// Lock takes the directory's exclusive lock (flock on the file "lock"),
// waiting until it is free or ctx ends (*LockError wrapping ctx.Err()).
// One bintrans run holds it from before it loads the checkpoint until after
// it stores the next one, so that concurrent runs serialize. unlock is
// idempotent. The lock is released by the kernel if the process dies.
func (d *Dir) Lock(ctx context.Context) (unlock func(), err error) {
	if d.readOnly {
		return nil, &LockError{Path: filepath.Join(d.path, "lock"), Err: ErrReadOnly}
	}
	return flock(ctx, filepath.Join(d.path, "lock"))
}

func flock(ctx context.Context, path string) (func(), error) {
	l, err := durable.Lock(ctx, path)
	if err != nil {
		return nil, &LockError{Path: path, Err: err}
	}
	return func() { l.Unlock() }, nil
}
