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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// Checkpoints returns the checkpoint store of the directory's default log
// (file "checkpoint.json"). A client that may talk to several logs uses
// CheckpointsFor with the log's id, so that switching logs never compares
// checkpoints of different logs.
func (d *Dir) Checkpoints() verify.CheckpointStore {
	return &checkpointStore{path: d.Path("checkpoint.json"), readOnly: d.readOnly}
}

// CheckpointsFor returns the checkpoint store of the log identified by
// logID (e.g. the hex sha256 of its public key, Rekor's logID): file
// "checkpoint-<logID>.json". logID must be 1-100 characters of
// [A-Za-z0-9._-]; anything else panics.
func (d *Dir) CheckpointsFor(logID string) verify.CheckpointStore {
	if len(logID) > 100 {
		panic(fmt.Sprintf("state: log id %q too long", logID))
	}
	return &checkpointStore{path: d.Path("checkpoint-" + logID + ".json"), readOnly: d.readOnly}
}

type checkpointStore struct {
	path     string
	readOnly bool
}

// fileFormat is the on-disk checkpoint file.
type fileFormat struct {
	SchemaVersion int    `json:"schema_version"`
	Checkpoint    string `json:"checkpoint"`
	// SHA256 is the hex sha256 of Checkpoint: catches edits and bit rot
	// that still parse as JSON.
	SHA256 string `json:"sha256"`
	// StoredAt is informational (when this run stored it).
	StoredAt time.Time `json:"stored_at"`
}

// Load returns the stored checkpoint, or (nil, nil) when none was stored
// yet. A file that exists but is unusable is a *CorruptError.
func (s *checkpointStore) Load(ctx context.Context) ([]byte, error) {
	return load(s.path)
}

func load(path string) ([]byte, error) {
	b, err := durable.ReadFile(path, maxStateFile)
	var tl *durable.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.As(err, &tl):
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("larger than %d bytes", maxStateFile)}
	case err != nil:
		return nil, fmt.Errorf("state: %w", err)
	}
	cp, reason := decode(b)
	if reason != "" {
		return nil, &CorruptError{Path: path, Reason: reason}
	}
	return cp, nil
}

// decode parses a checkpoint file; a non-empty reason says why it is unusable.
func decode(b []byte) (cp []byte, reason string) {
	if len(b) > maxStateFile {
		return nil, fmt.Sprintf("larger than %d bytes", maxStateFile)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, "empty file"
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ff fileFormat
	if err := dec.Decode(&ff); err != nil {
		return nil, "not a checkpoint file: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "trailing data after the JSON object"
	}
	if ff.SchemaVersion != SchemaVersion {
		return nil, fmt.Sprintf("schema_version %d, want %d", ff.SchemaVersion, SchemaVersion)
	}
	if ff.Checkpoint == "" {
		return nil, "no checkpoint"
	}
	if len(ff.Checkpoint) > verify.MaxCheckpointSize {
		return nil, fmt.Sprintf("checkpoint longer than %d bytes", verify.MaxCheckpointSize)
	}
	sum := sha256.Sum256([]byte(ff.Checkpoint))
	if got := hex.EncodeToString(sum[:]); got != ff.SHA256 {
		return nil, fmt.Sprintf("sha256 mismatch: file says %q, checkpoint hashes to %s", ff.SHA256, got)
	}
	if _, _, err := treeHead([]byte(ff.Checkpoint)); err != nil {
		return nil, err.Error()
	}
	return []byte(ff.Checkpoint), ""
}

// treeHead returns the tree size and root hash of a checkpoint note
// ("<origin>\n<size>\n<base64 root>\n…").
func treeHead(note []byte) (uint64, []byte, error) {
	lines := strings.SplitN(string(note), "\n", 4)
	if len(lines) < 4 {
		return 0, nil, errors.New("checkpoint: fewer than three lines")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || lines[1] != strconv.FormatUint(size, 10) {
		return 0, nil, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return 0, nil, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	return size, root, nil
}

// Store replaces the stored checkpoint with cp, atomically and durably.
// The caller must have verified cp (signature, and consistency with what
// Load returned). Store never moves backwards: when the stored checkpoint
// (written meanwhile by a concurrent run) has a larger tree, it is kept and
// Store returns nil; one of the same size with another root hash is a
// *ForkError. A corrupt stored file is a *CorruptError and is not replaced.
func (s *checkpointStore) Store(ctx context.Context, cp []byte) error {
	if s.readOnly {
		return fmt.Errorf("state: %s: %w", s.path, ErrReadOnly)
	}
	if len(cp) == 0 || len(cp) > verify.MaxCheckpointSize {
		return fmt.Errorf("state: refusing to store a checkpoint of %d bytes", len(cp))
	}
	size, root, err := treeHead(cp)
	if err != nil {
		return fmt.Errorf("state: refusing to store: %w", err)
	}
	// A short-lived lock of its own (not Dir.Lock, which the caller may
	// hold: flock locks of one process on two descriptors conflict).
	unlock, err := flock(ctx, s.path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	old, err := load(s.path)
	if err != nil {
		return err
	}
	if old != nil {
		oldSize, oldRoot, _ := treeHead(old) // load checked it
		switch {
		case oldSize > size:
			return nil
		case oldSize == size && !bytes.Equal(oldRoot, root):
			return &ForkError{Path: s.path, Size: size, Stored: old, Given: bytes.Clone(cp)}
		}
	}
	sum := sha256.Sum256(cp)
	b, err := json.MarshalIndent(fileFormat{
		SchemaVersion: SchemaVersion,
		Checkpoint:    string(cp),
		SHA256:        hex.EncodeToString(sum[:]),
		StoredAt:      time.Now().UTC().Truncate(time.Second),
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
